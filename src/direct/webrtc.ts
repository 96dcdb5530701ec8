// The few parts of node-datachannel (libdatachannel's Node binding, README "Direct path: WebRTC stack") the direct
// path uses, typed here so the rest of src/direct/ does not depend on the package's own types, and loaded on first
// use: a process that never tries a direct path never loads the native library.

import { ZksError } from '../errors/zks-error';

export interface RtcChannel {
  sendMessageBinary(data: Uint8Array): boolean;
  bufferedAmount(): number;
  setBufferedAmountLowThreshold(bytes: number): void;
  onBufferedAmountLow(cb: () => void): void;
  onOpen(cb: () => void): void;
  onClosed(cb: () => void): void;
  onError(cb: (err: string) => void): void;
  onMessage(cb: (msg: string | Buffer | ArrayBuffer) => void): void;
  isOpen(): boolean;
  close(): void;
}

export interface RtcCandidateInfo {
  address: string;
  port: number;
  type: string;
}

export interface RtcPeer {
  setRemoteDescription(sdp: string, type: 'offer' | 'answer'): void;
  addRemoteCandidate(candidate: string, mid: string): void;
  createDataChannel(label: string, cfg: { negotiated: true; id: number; unordered?: boolean; maxRetransmits?: number }): RtcChannel;
  remoteFingerprint(): { value: string; algorithm: string } | null;
  getSelectedCandidatePair(): { local: RtcCandidateInfo; remote: RtcCandidateInfo } | null;
  onLocalDescription(cb: (sdp: string, type: string) => void): void;
  onLocalCandidate(cb: (candidate: string, mid: string) => void): void;
  onStateChange(cb: (state: string) => void): void;
  close(): void;
}

export interface RtcIceServer {
  hostname: string;
  port: number;
  username?: string;
  password?: string;
  relayType?: 'TurnUdp' | 'TurnTcp' | 'TurnTls';
}

export interface RtcConfig {
  iceServers: RtcIceServer[];
  bindAddress?: string;
  iceTransportPolicy?: 'all' | 'relay';
  maxMessageSize: number;
  enableIceUdpMux?: boolean;
  portRangeBegin?: number;
  portRangeEnd?: number;
}

export interface WebRtc {
  newPeer(name: string, config: RtcConfig): RtcPeer;
}

let loaded: Promise<WebRtc> | null = null;

/** node-datachannel, once; ZKS_ERR_UNSUPPORTED when it cannot be loaded (not installed for this platform). */
export function loadWebRtc(): Promise<WebRtc> {
  loaded ??= import('node-datachannel').then(
    (mod) => {
      const ndc = (mod as { default?: unknown }).default ?? mod;
      const { PeerConnection } = ndc as { PeerConnection: new (name: string, cfg: RtcConfig) => RtcPeer };
      return { newPeer: (name, config) => new PeerConnection(name, config) };
    },
    (err: unknown) => {
      throw new ZksError('ZKS_ERR_UNSUPPORTED', `the direct path needs node-datachannel, which did not load here: ${(err as Error)?.message ?? String(err)}`);
    },
  );
  return loaded;
}
