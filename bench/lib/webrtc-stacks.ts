// One small interface over the three WebRTC candidates (node-datachannel's own API, werift, @roamhq/wrtc's W3C
// API), so the benchmark peer (webrtc-peer.ts) runs the same code on each. Every peer is created with NO ICE
// servers (no public STUN default), and both DataChannels are negotiated out of band (same id on both sides: no
// DCEP round trip, and werift only honours unordered channels that way). The answerer creates its channels only
// after the offer is applied (node-datachannel would otherwise start its own offer: glare). Packages are
// imported lazily, so a missing one only removes its candidate.

export type StackName = 'node-datachannel' | 'werift' | 'wrtc';
export const STACKS: readonly StackName[] = ['node-datachannel', 'werift', 'wrtc'];
export const PACKAGE_OF: Record<StackName, string> = { 'node-datachannel': 'node-datachannel', werift: 'werift', wrtc: '@roamhq/wrtc' };

export type Signal = { kind: 'description'; type: string; sdp: string } | { kind: 'candidate'; candidate: string; mid: string };

export interface ChannelSpec {
  label: string;
  id: number;
  ordered: boolean;
  maxRetransmits?: number;
}

export interface Chan {
  send(data: Uint8Array): void;
  bufferedAmount(): number;
  setLowThreshold(bytes: number): void;
  onLow(cb: () => void): void;
  onMessage(cb: (data: Uint8Array) => void): void;
  onOpen(cb: () => void): void;
  onClose(cb: () => void): void;
  /** What the stack says the peer accepts (undefined when it does not say). */
  maxMessageSize(): number | undefined;
}

export interface Peer {
  /** Offerer: creates the channels and starts the offer. Answerer: waits for `signal()`. */
  start(specs: ChannelSpec[]): Promise<Chan[] | undefined>;
  /** Answerer: resolves with the channels once the offer has been applied. */
  channels(): Promise<Chan[]>;
  signal(s: Signal): Promise<void>;
  close(): void;
}

export interface PeerEvents {
  signal(s: Signal): void;
  /** `kind`: what the stack reports (ice / pc / sctp …), `state` its raw value. */
  state(kind: string, state: string): void;
}

export type PeerFactory = (role: 'offer' | 'answer', ev: PeerEvents) => Peer;

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// ---------------------------------------------------------------- node-datachannel (libdatachannel, native API)
interface NdcChannel {
  sendMessageBinary(b: Uint8Array): boolean;
  bufferedAmount(): number;
  maxMessageSize(): number;
  setBufferedAmountLowThreshold(n: number): void;
  onBufferedAmountLow(cb: () => void): void;
  onMessage(cb: (m: string | Buffer | ArrayBuffer) => void): void;
  onOpen(cb: () => void): void;
  onClosed(cb: () => void): void;
  close(): void;
}
interface NdcPeer {
  setRemoteDescription(sdp: string, type: string): void;
  addRemoteCandidate(c: string, mid: string): void;
  createDataChannel(label: string, cfg: { negotiated: boolean; id: number; unordered: boolean; maxRetransmits?: number }): NdcChannel;
  onLocalDescription(cb: (sdp: string, type: string) => void): void;
  onLocalCandidate(cb: (c: string, mid: string) => void): void;
  onStateChange(cb: (s: string) => void): void;
  onIceStateChange(cb: (s: string) => void): void;
  close(): void;
}
interface NdcModule {
  PeerConnection: new (name: string, cfg: { iceServers: string[] }) => NdcPeer;
}

function ndcChan(dc: NdcChannel): Chan {
  return {
    send: (b) => void dc.sendMessageBinary(b),
    bufferedAmount: () => dc.bufferedAmount(),
    setLowThreshold: (n) => dc.setBufferedAmountLowThreshold(n),
    onLow: (cb) => dc.onBufferedAmountLow(cb),
    onMessage: (cb) => dc.onMessage((m) => cb(typeof m === 'string' ? Buffer.from(m) : m instanceof ArrayBuffer ? new Uint8Array(m) : m)),
    onOpen: (cb) => dc.onOpen(cb),
    onClose: (cb) => dc.onClosed(cb),
    maxMessageSize: () => dc.maxMessageSize(),
  };
}

function ndcFactory(mod: NdcModule): PeerFactory {
  return (role, ev) => {
    const pc = new mod.PeerConnection(role, { iceServers: [] });
    pc.onLocalDescription((sdp, type) => ev.signal({ kind: 'description', type, sdp }));
    pc.onLocalCandidate((candidate, mid) => ev.signal({ kind: 'candidate', candidate, mid }));
    pc.onStateChange((s) => ev.state('pc', s));
    pc.onIceStateChange((s) => ev.state('ice', s));
    const made = deferred<Chan[]>();
    let specs: ChannelSpec[] = [];
    const create = (list: ChannelSpec[]): Chan[] =>
      list.map((s) => ndcChan(pc.createDataChannel(s.label, { negotiated: true, id: s.id, unordered: !s.ordered, maxRetransmits: s.maxRetransmits })));
    return {
      async start(list) {
        specs = list;
        if (role === 'answer') return undefined;
        const chans = create(list); // auto-negotiation: the first channel triggers the offer
        made.resolve(chans);
        return chans;
      },
      channels: () => made.promise,
      async signal(s) {
        if (s.kind === 'candidate') return pc.addRemoteCandidate(s.candidate, s.mid);
        pc.setRemoteDescription(s.sdp, s.type);
        if (role === 'answer') made.resolve(create(specs));
      },
      close: () => pc.close(),
    };
  };
}

// ---------------------------------------------------------------- W3C-shaped stacks (werift, @roamhq/wrtc)
interface W3cChannel {
  send(b: Uint8Array): void;
  bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  binaryType?: string;
  onopen: (() => void) | null | undefined;
  onclose: (() => void) | null | undefined;
  onbufferedamountlow?: (() => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null | undefined;
  close(): void;
}
interface W3cPeer {
  createDataChannel(label: string, o: { negotiated: boolean; id: number; ordered: boolean; maxRetransmits?: number }): W3cChannel;
  createOffer(): Promise<{ type: string; sdp: string }>;
  createAnswer(): Promise<{ type: string; sdp: string }>;
  setLocalDescription(d: { type: string; sdp: string }): Promise<unknown>;
  setRemoteDescription(d: { type: string; sdp: string }): Promise<unknown>;
  addIceCandidate(c: { candidate: string; sdpMid: string; sdpMLineIndex?: number }): Promise<unknown>;
  localDescription: { type: string; sdp: string } | null | undefined;
  close(): unknown;
}

function toBytes(d: unknown): Uint8Array {
  if (d instanceof Uint8Array) return d;
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  return Buffer.from(String(d));
}

function w3cChan(dc: W3cChannel, onLow: (dc: W3cChannel, cb: () => void) => void): Chan {
  dc.binaryType = 'arraybuffer';
  return {
    send: (b) => dc.send(b),
    bufferedAmount: () => dc.bufferedAmount,
    setLowThreshold: (n) => (dc.bufferedAmountLowThreshold = n),
    onLow: (cb) => onLow(dc, cb),
    onMessage: (cb) => (dc.onmessage = (e) => cb(toBytes(e.data))),
    onOpen: (cb) => (dc.onopen = cb),
    onClose: (cb) => (dc.onclose = cb),
    maxMessageSize: () => undefined,
  };
}

interface W3cHooks {
  make(): W3cPeer;
  wire(pc: W3cPeer, ev: PeerEvents): void;
  onLow(dc: W3cChannel, cb: () => void): void;
}

function w3cFactory(h: W3cHooks): PeerFactory {
  return (role, ev) => {
    const pc = h.make();
    h.wire(pc, ev);
    const made = deferred<Chan[]>();
    let specs: ChannelSpec[] = [];
    const create = (list: ChannelSpec[]): Chan[] =>
      list.map((s) =>
        w3cChan(pc.createDataChannel(s.label, { negotiated: true, id: s.id, ordered: s.ordered, maxRetransmits: s.maxRetransmits }), h.onLow),
      );
    const sendLocal = (): void => {
      const d = pc.localDescription;
      if (d) ev.signal({ kind: 'description', type: d.type, sdp: d.sdp });
    };
    return {
      async start(list) {
        specs = list;
        if (role === 'answer') return undefined;
        const chans = create(list);
        made.resolve(chans);
        await pc.setLocalDescription(await pc.createOffer());
        sendLocal();
        return chans;
      },
      channels: () => made.promise,
      async signal(s) {
        if (s.kind === 'candidate') {
          await pc.addIceCandidate({ candidate: s.candidate, sdpMid: s.mid, sdpMLineIndex: 0 });
          return;
        }
        await pc.setRemoteDescription({ type: s.type, sdp: s.sdp });
        if (role !== 'answer') return;
        made.resolve(create(specs));
        await pc.setLocalDescription(await pc.createAnswer());
        sendLocal();
      },
      close: () => void pc.close(),
    };
  };
}

interface Subscribable<A extends unknown[]> {
  subscribe(cb: (...a: A) => void): unknown;
}

async function weriftFactory(): Promise<PeerFactory> {
  const mod = (await import('werift')) as unknown as { RTCPeerConnection: new (cfg: { iceServers: never[] }) => W3cPeer };
  return w3cFactory({
    make: () => new mod.RTCPeerConnection({ iceServers: [] }),
    wire(pc, ev) {
      const p = pc as unknown as {
        onIceCandidate: Subscribable<[{ toJSON(): { candidate?: string; sdpMid?: string } } | undefined]>;
        iceConnectionStateChange: Subscribable<[string]>;
        connectionStateChange: Subscribable<[string]>;
      };
      p.onIceCandidate.subscribe((c) => {
        const j = c?.toJSON();
        if (j?.candidate) ev.signal({ kind: 'candidate', candidate: j.candidate, mid: j.sdpMid ?? '0' });
      });
      p.iceConnectionStateChange.subscribe((s) => ev.state('ice', s));
      p.connectionStateChange.subscribe((s) => ev.state('pc', s));
    },
    onLow: (dc, cb) => (dc as unknown as { bufferedAmountLow: Subscribable<[]> }).bufferedAmountLow.subscribe(cb),
  });
}

async function wrtcFactory(): Promise<PeerFactory> {
  const imported = (await import('@roamhq/wrtc')) as unknown as { default?: unknown };
  const mod = (imported.default ?? imported) as { RTCPeerConnection: new (cfg: { iceServers: never[] }) => W3cPeer };
  return w3cFactory({
    make: () => new mod.RTCPeerConnection({ iceServers: [] }),
    wire(pc, ev) {
      const p = pc as unknown as {
        onicecandidate: (e: { candidate: { candidate: string; sdpMid: string } | null }) => void;
        oniceconnectionstatechange: () => void;
        onconnectionstatechange: () => void;
        iceConnectionState: string;
        connectionState: string;
      };
      p.onicecandidate = (e) => {
        if (e.candidate?.candidate) ev.signal({ kind: 'candidate', candidate: e.candidate.candidate, mid: e.candidate.sdpMid ?? '0' });
      };
      p.oniceconnectionstatechange = () => ev.state('ice', p.iceConnectionState);
      p.onconnectionstatechange = () => ev.state('pc', p.connectionState);
    },
    onLow: (dc, cb) => (dc.onbufferedamountlow = cb),
  });
}

export async function loadStack(name: StackName): Promise<PeerFactory> {
  switch (name) {
    case 'node-datachannel':
      return ndcFactory((await import('node-datachannel')) as unknown as NdcModule);
    case 'werift':
      return weriftFactory();
    case 'wrtc':
      return wrtcFactory();
  }
}
