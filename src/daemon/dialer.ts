// What the daemon needs from the tunnel to open streams: the client layer's Dialer (src/client/dialer.ts), named
// here too so daemon code keeps importing it from its own folder.
export type { Dialer } from '../client/dialer';
