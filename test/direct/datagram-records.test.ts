// Datagram records (PROTOCOL.md §3.6): the keys and a record match the vectors generated with @noble primitives
// (test/vectors/handshake.json "datagram"); the replay window accepts each number at most once, reordered ones
// within 2 048 of the newest, never older ones or forgeries — whatever order they come in (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodeCrypto } from '../../src/crypto/node';
import { DatagramOpener, DatagramSealer, deriveDatagramKeys, MIN_DATAGRAM_RECORD, REPLAY_WINDOW } from '../../src/direct/datagram-records';
import { decodeRecord, FrameType } from '../../src/protocol/index';
import vector from '../vectors/handshake.json';

const unhex = (x: string) => new Uint8Array(Buffer.from(x, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const q = vector.datagram;
const keys = () => deriveDatagramKeys(nodeCrypto, { suite: 'aes-256-gcm', sendKey: unhex(vector.sequenced.seqKC2S), recvKey: unhex(vector.sequenced.seqKS2C) });

describe('datagram records: vectors', () => {
  it('the exit opens the vector\'s client record 7 to its UDP_DATAGRAM; a sealer numbers its records from 0', async () => {
    const client = await keys();
    const exit = await deriveDatagramKeys(nodeCrypto, { suite: 'aes-256-gcm', sendKey: unhex(vector.sequenced.seqKS2C), recvKey: unhex(vector.sequenced.seqKC2S) });
    const frames = new DatagramOpener(exit.recv).open(unhex(q.datagramRecordC2S7));
    expect(frames).toBeInstanceOf(Uint8Array);
    expect(hex(frames as Uint8Array)).toBe(q.datagramPlainC2S7);
    const r = decodeRecord(frames as Uint8Array);
    expect(r.ok && r.frames[0]).toMatchObject({ type: FrameType.UDP_DATAGRAM, stream: 1, address: { host: '10.0.0.53', port: 53 } });
    // The same plaintext sealed as record 7 by our sealer is the vector's record.
    const sealer = new DatagramSealer(client.send);
    for (let i = 0; i < 7; i++) sealer.seal(new Uint8Array(1));
    expect(hex(sealer.seal(unhex(q.datagramPlainC2S7))!)).toBe(q.datagramRecordC2S7);
  });
});

describe('datagram records: replay window', () => {
  it('each number once; reordered within the window yes, older or forged no', async () => {
    const k = await keys();
    const sealer = new DatagramSealer(k.send);
    const records = Array.from({ length: REPLAY_WINDOW + 10 }, (_, i) => sealer.seal(new Uint8Array([i & 0xff]))!);
    const exit = await deriveDatagramKeys(nodeCrypto, { suite: 'aes-256-gcm', sendKey: unhex(vector.sequenced.seqKS2C), recvKey: unhex(vector.sequenced.seqKC2S) });
    const opener = new DatagramOpener(exit.recv);
    expect(opener.open(records[5]!)).toBeInstanceOf(Uint8Array);
    expect(opener.open(records[5]!)).toBe('replay');
    expect(opener.open(records[2]!)).toBeInstanceOf(Uint8Array); // came late, within the window
    expect(opener.open(records[REPLAY_WINDOW + 9]!)).toBeInstanceOf(Uint8Array);
    expect(opener.open(records[3]!)).toBe('replay'); // now 2 054 behind the newest: too old
    const flipped = records[100]!.slice();
    flipped[MIN_DATAGRAM_RECORD] ^= 1;
    expect(opener.open(flipped)).toBe('forged');
    expect(opener.open(records[100]!)).toBeInstanceOf(Uint8Array); // the forgery did not burn its number
    expect(opener.open(new Uint8Array(MIN_DATAGRAM_RECORD - 1))).toBe('forged');
    expect({ replays: opener.replays, forged: opener.forged }).toEqual({ replays: 2, forged: 2 });
  });

  it('any arrival order with repeats: accepted iff never accepted before and within the window of the newest', async () => {
    const k = await keys();
    const exit = await deriveDatagramKeys(nodeCrypto, { suite: 'aes-256-gcm', sendKey: unhex(vector.sequenced.seqKS2C), recvKey: unhex(vector.sequenced.seqKC2S) });
    const sealer = new DatagramSealer(k.send);
    const records = Array.from({ length: 6000 }, () => sealer.seal(new Uint8Array(0))!);
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 5999 }), { minLength: 1, maxLength: 400 }), (order) => {
      const opener = new DatagramOpener(exit.recv);
      const accepted = new Set<number>();
      let top = -1;
      for (const seq of order) {
        const want = !accepted.has(seq) && (seq > top || top - seq < REPLAY_WINDOW);
        expect(opener.open(records[seq]!) instanceof Uint8Array).toBe(want);
        if (want) accepted.add(seq), (top = Math.max(top, seq));
      }
    }), { numRuns: 200 });
  });
});
