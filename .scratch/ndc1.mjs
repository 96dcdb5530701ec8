import ndc from 'node-datachannel';
const { PeerConnection } = ndc;
const tamper = process.argv[2] === 'tamper';
const cfg = { iceServers: [], bindAddress: '127.0.0.1', maxMessageSize: 1200 * 1024, enableIceUdpMux: false };
const a = new PeerConnection('a', cfg), b = new PeerConnection('b', cfg);
let bChans = null;
a.onLocalDescription((sdp, type) => {
  console.log('A sdp', type, sdp.split('\r\n').filter(l => /fingerprint|max-message|candidate|setup/.test(l)));
  if (tamper) sdp = sdp.replace(/a=fingerprint:sha-256 ([0-9A-F]{2})/, (m, x) => 'a=fingerprint:sha-256 ' + (x === 'AA' ? 'BB' : 'AA'));
  b.setRemoteDescription(sdp, type);
  if (!bChans) bChans = [b.createDataChannel('zks-r', { negotiated: true, id: 1 }), b.createDataChannel('zks-d', { negotiated: true, id: 2, unordered: true, maxRetransmits: 0 })];
  bChans[0].onMessage((m) => { console.log('B got', m.byteLength ?? m.length); });
});
b.onLocalDescription((sdp, type) => { console.log('B sdp', type); a.setRemoteDescription(sdp, type); });
a.onLocalCandidate((c, mid) => { console.log('A cand', c, mid); b.addRemoteCandidate(c, mid); });
b.onLocalCandidate((c, mid) => { console.log('B cand', c, mid); a.addRemoteCandidate(c, mid); });
a.onStateChange((s) => console.log('A state', s, Date.now() - t0));
b.onStateChange((s) => console.log('B state', s, Date.now() - t0));
const t0 = Date.now();
const r = a.createDataChannel('zks-r', { negotiated: true, id: 1 });
const d = a.createDataChannel('zks-d', { negotiated: true, id: 2, unordered: true, maxRetransmits: 0 });
r.onOpen(() => {
  console.log('A r open', Date.now() - t0, 'max', r.maxMessageSize(), 'fp', JSON.stringify(a.remoteFingerprint()), 'pair', JSON.stringify(a.getSelectedCandidatePair?.()));
  console.log('send 600k', r.sendMessageBinary(new Uint8Array(600 * 1024)));
  setTimeout(() => { a.close(); b.close(); setTimeout(() => { ndc.cleanup(); }, 100); }, 500);
});
setTimeout(() => { console.log('timeout'); a.close(); b.close(); ndc.cleanup(); }, 8000).unref();
