// Reproduces the node-datachannel stall seen in a first try (sender stuck at bufferedAmount ≈ 1.2–1.4 MiB after
// a few tens of MB, onBufferedAmountLow never firing): the RECEIVER kept no reference to the DataChannel it got
// from onDataChannel, V8 collected the JS object and with it the onMessage callback, so libdatachannel stopped
// reading, the SCTP receive window filled and the sender's queue never drained. Keeping a reference fixes it.
// Both peers run in one process inside a namespace created here (host candidates on its veth only); gc() runs every
// second so the outcome does not depend on heap pressure.
//   sudo node --expose-gc --import tsx bench/webrtc-ndc-gc-stall.ts      → prints one line per mode
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createNetnsPair } from './lib/netns-pair';

interface NdcChannel {
  sendMessageBinary(b: Uint8Array): boolean;
  bufferedAmount(): number;
  setBufferedAmountLowThreshold(n: number): void;
  onBufferedAmountLow(cb: () => void): void;
  onMessage(cb: (m: Buffer) => void): void;
  onOpen(cb: () => void): void;
}
interface NdcPeer {
  onLocalDescription(cb: (sdp: string, type: string) => void): void;
  onLocalCandidate(cb: (c: string, mid: string) => void): void;
  setRemoteDescription(sdp: string, type: string): void;
  addRemoteCandidate(c: string, mid: string): void;
  onDataChannel(cb: (dc: NdcChannel) => void): void;
  createDataChannel(label: string): NdcChannel;
}

const TOTAL = 300e6;

/** Child mode: both peers here; the naive sender (64 KiB, refill on the event at 1 MiB, stop above 4 MiB). */
async function child(retain: boolean): Promise<void> {
  const ndc = (await import('node-datachannel')) as unknown as { PeerConnection: new (n: string, c: { iceServers: string[] }) => NdcPeer };
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const a = new ndc.PeerConnection('a', { iceServers: [] });
  const b = new ndc.PeerConnection('b', { iceServers: [] });
  a.onLocalDescription((s, t) => b.setRemoteDescription(s, t));
  a.onLocalCandidate((c, m) => b.addRemoteCandidate(c, m));
  b.onLocalDescription((s, t) => a.setRemoteDescription(s, t));
  b.onLocalCandidate((c, m) => a.addRemoteCandidate(c, m));
  let got = 0;
  const kept: NdcChannel[] = [];
  b.onDataChannel((dc) => {
    if (retain) kept.push(dc);
    dc.onMessage((m) => (got += m.byteLength));
  });
  const dc = a.createDataChannel('bulk');
  const msg = new Uint8Array(64 << 10);
  let sent = 0;
  const pump = (): void => {
    while (sent < TOTAL && dc.bufferedAmount() <= 4 << 20) {
      dc.sendMessageBinary(msg);
      sent += msg.length;
    }
  };
  dc.onOpen(() => {
    dc.setBufferedAmountLowThreshold(1 << 20);
    dc.onBufferedAmountLow(pump);
    pump();
  });
  let last = -1;
  let still = 0;
  setInterval(() => {
    gc();
    const mode = retain ? 'receiver keeps its DataChannel' : 'receiver drops its DataChannel';
    if (got >= TOTAL) {
      console.log(`${mode}: completed ${TOTAL / 1e6} MB`);
      process.exit(0);
    }
    still = got === last ? still + 1 : 0;
    last = got;
    if (still >= 3) {
      console.log(`${mode}: stalled after ${(got / 1e6).toFixed(1)} MB, sender bufferedAmount ${(dc.bufferedAmount() / 1024).toFixed(0)} KiB`);
      process.exit(0);
    }
  }, 1000);
}

if (process.argv[2] === '--child') {
  await child(process.argv[3] === 'retain');
} else {
  const net = await createNetnsPair('zkse-gc');
  try {
    for (const mode of ['drop', 'retain']) {
      const r = spawnSync(net.a.exec[0]!, [...net.a.exec.slice(1), process.execPath, '--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', mode], {
        encoding: 'utf8',
        timeout: 180_000,
      });
      process.stdout.write(r.stdout || `${mode}: no result (${r.status ?? r.signal}) ${r.stderr.slice(-300)}\n`);
    }
  } finally {
    await net.del();
  }
}
