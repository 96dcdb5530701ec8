// Sockets of the netstack: state machines fed by the interface, no I/O (see tcp.ts).
export * from './tcp';
