// Joins one netstack TCP socket (the application's flow from the TUN) to one tunnel stream, both ways, with
// backpressure at both ends and no buffering beyond the windows:
//   tunnel → app: stream data is handed to socket.send(); credit goes back to the relay only for bytes the socket
//                 took, so a slow application stops the far end instead of growing a queue here.
//   app → tunnel: socket.recv() only while the stream has credit; unread bytes stay in the socket, whose
//                 advertised window shrinks — the application's TCP slows down by itself.
// FIN maps to FIN (half-close both ways); a reset on either side resets the other, so an application sees an
// error, never a silently truncated transfer.

import { ResetCode } from '../protocol/constants';
import type { MuxStream } from '../protocol/stream';
import type { Flow } from '../netstack/iface';
import { TcpState } from '../netstack/socket/index';

export type FlowPath = 'worker' | 'exit' | 'dns';

/**
 * One scratch buffer for every socket → stream hand-over: MuxStream.write copies what it takes (into the record
 * batch, or into its pending queue), so reading into a reused buffer saves an allocation per read — much of the
 * upload path's garbage otherwise.
 */
const scratch = new Uint8Array(256 * 1024);

export class FlowPump {
  /** Tunnel bytes the socket has not taken yet (at most one stream window). */
  private toApp: Uint8Array[] = [];
  private tunnelEnded = false;
  private finToApp = false;
  private finToTunnel = false;
  private stream: MuxStream | null = null;
  /** The flow is gone from the interface (closed or reset by the application). */
  private gone = false;
  readonly openedAt = Date.now();
  bytesUp = 0;
  bytesDown = 0;
  /** Why the flow failed, for the flow table (null while fine). */
  error: string | null = null;

  constructor(
    readonly flow: Flow,
    readonly target: { host: string; port: number },
    /** Where its stream ends; with the Worker and an exit peer at once, set once the router has chosen. */
    public path: FlowPath,
    /** Asks the engine for a service pass that includes this pump. */
    private readonly wake: (pump: FlowPump) => void,
  ) {}

  get connected(): boolean {
    return this.stream !== null;
  }

  /** The tunnel stream once it is open (null before). */
  get tunnelStream(): MuxStream | null {
    return this.stream;
  }

  /** The tunnel stream is open: answer the application's SYN and start moving bytes. */
  attach(stream: MuxStream, nowMs: number): void {
    if (this.gone) {
      stream.reset(ResetCode.CANCEL, 'application went away while connecting');
      return;
    }
    this.stream = stream;
    stream.onData = (chunk) => {
      this.toApp.push(chunk);
      this.wake(this);
    };
    stream.onEnd = () => {
      this.tunnelEnded = true;
      this.wake(this);
    };
    stream.onDrain = () => this.wake(this);
    stream.onClose = (err) => {
      if (err === null || this.gone) return;
      this.error = err.message;
      this.toApp = [];
      this.flow.socket.abort(); // RST to the application
      this.wake(this);
    };
    this.flow.socket.accept(nowMs);
    this.wake(this);
  }

  /** The tunnel could not connect: the application's SYN is answered with a RST ("connection refused"). */
  refuse(message: string): void {
    this.error = message;
    if (!this.gone) this.flow.socket.refuse();
    this.wake(this);
  }

  /** Moves whatever can move now. Called from the engine's service pass. */
  service(): void {
    const stream = this.stream;
    if (stream === null || this.gone) return;
    const socket = this.flow.socket;
    // Tunnel → application.
    while (this.toApp.length > 0) {
      const chunk = this.toApp[0];
      const n = socket.send(chunk);
      if (n > 0) {
        this.bytesDown += n;
        stream.consume(n);
      }
      if (n < chunk.length) {
        this.toApp[0] = chunk.subarray(n);
        break;
      }
      this.toApp.shift();
    }
    if (this.tunnelEnded && this.toApp.length === 0 && !this.finToApp) {
      this.finToApp = true;
      socket.close();
    }
    // Application → tunnel.
    if (stream.state === 'open') {
      while (stream.writable) {
        const data = socket.recv(scratch);
        if (data === null) break;
        this.bytesUp += data.length;
        stream.write(data);
      }
      if (socket.remoteClosed && socket.recvQueued === 0 && !this.finToTunnel) {
        this.finToTunnel = true;
        stream.end();
      }
    }
  }

  /** `zks`/TUI "close this flow": both sides see a reset. */
  abort(): void {
    if (this.gone) return;
    this.error = 'closed by the operator';
    this.flow.socket.abort();
    this.stream?.reset(ResetCode.CANCEL, 'flow closed by the operator');
    this.wake(this);
  }

  /** The interface removed the flow (both sides closed, or the application reset it). */
  closed(): void {
    this.gone = true;
    this.toApp = [];
    const stream = this.stream;
    if (stream !== null && stream.state !== 'closed') {
      const clean = this.finToApp && this.finToTunnel;
      // A clean TCP close has already ended both directions; anything else is an abort the relay must see.
      if (!clean) stream.reset(ResetCode.CANCEL, 'application reset the connection');
    }
  }

  get state(): string {
    if (this.error !== null) return 'failed';
    if (this.stream === null) return this.flow.socket.state === TcpState.CLOSED ? 'closed' : 'connecting';
    return this.flow.socket.state.toLowerCase();
  }
}
