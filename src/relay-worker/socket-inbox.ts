// One accepted WebSocket's messages, read one at a time during a handshake (the resume exchange reads its RESUME
// record before anything else may happen) and then handed over, in order and none lost, to whoever carries the
// session. workerd delivers events to listeners only: this is the one listener each socket gets.

export interface InboxHandlers {
  onMessage(data: Uint8Array): void;
  /** A text message: the session's protocol is binary only. */
  onText(): void;
  onClose(why: string): void;
}

export class SocketInbox {
  private readonly queue: Array<Uint8Array | string> = [];
  private closedWhy: string | null = null;
  private wake: (() => void) | null = null;
  private handlers: InboxHandlers | null = null;

  constructor(readonly ws: WebSocket) {
    ws.addEventListener('message', (ev: MessageEvent) => {
      const data = ev.data instanceof ArrayBuffer ? new Uint8Array(ev.data) : String(ev.data);
      if (!this.handlers) {
        this.queue.push(data);
        return this.wakeUp();
      }
      if (typeof data === 'string') this.handlers.onText();
      else this.handlers.onMessage(data);
    });
    const closed = (why: string) => {
      if (this.closedWhy !== null) return;
      this.closedWhy = why;
      if (this.handlers) this.handlers.onClose(why);
      else this.wakeUp();
    };
    ws.addEventListener('close', () => closed('client closed the WebSocket'));
    ws.addEventListener('error', () => closed('WebSocket error'));
  }

  /** The next binary message; null when the socket closed, a text message came, or none came within `timeoutMs`. */
  async next(timeoutMs: number): Promise<Uint8Array | null> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.wakeUp();
    }, timeoutMs);
    try {
      while (this.queue.length === 0) {
        if (this.closedWhy !== null || timedOut) return null;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
      const data = this.queue.shift()!;
      return typeof data === 'string' ? null : data;
    } finally {
      clearTimeout(timer);
    }
  }

  /** From now on messages and the close go to `handlers`: first what came meanwhile, in order. */
  handOver(handlers: InboxHandlers): void {
    this.handlers = handlers;
    for (const data of this.queue.splice(0)) {
      if (typeof data === 'string') handlers.onText();
      else handlers.onMessage(data);
    }
    if (this.closedWhy !== null) handlers.onClose(this.closedWhy);
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
