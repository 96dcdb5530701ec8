// RecordBatch: many frames per record, a flush at RECORD_FLUSH_THRESHOLD without waiting for the scheduler,
// DATA split at MAX_FRAME_PAYLOAD, records capped at MAX_RECORD_SIZE, pushData copying its input, and
// consecutive writes to one stream joined into one DATA frame.
import { describe, expect, it } from 'vitest';
import {
  FRAME_HEADER_SIZE, FrameType, MAX_FRAME_PAYLOAD, MAX_RECORD_SIZE, RECORD_FLUSH_THRESHOLD, RecordBatch,
  type Frame,
} from '../../src/protocol/index';
import { FIN, PING, WINDOW_UPDATE, concat, expectSameBytes, framesOf, pattern } from './helpers';

function batch() {
  const records: Uint8Array[] = [];
  const tasks: Array<() => void> = [];
  const b = new RecordBatch((r) => void records.push(r), (fn) => void tasks.push(fn));
  const runTasks = () => {
    while (tasks.length) tasks.shift()!();
  };
  return { b, records, tasks, runTasks };
}

const dataOf = (records: Uint8Array[], stream = 1) =>
  concat(records.flatMap(framesOf).flatMap((f) => (f.type === FrameType.DATA && f.stream === stream ? [f.data] : [])));

describe('RecordBatch', () => {
  it('collects frames into one record, emitted when the scheduled flush runs', () => {
    const { b, records, tasks, runTasks } = batch();
    b.push(WINDOW_UPDATE);
    b.pushData(1, pattern(100));
    b.push(FIN);
    expect(records).toHaveLength(0);
    expect(tasks).toHaveLength(1); // one scheduled flush per batch, not one per frame
    expect(b.pendingBytes).toBe(FRAME_HEADER_SIZE * 3 + 4 + 100);
    runTasks();
    expect(records).toHaveLength(1);
    expect(framesOf(records[0]).map((f) => f.type)).toEqual([FrameType.WINDOW_UPDATE, FrameType.DATA, FrameType.FIN]);
    expect(b.pendingBytes).toBe(0);
  });

  it('flush() with nothing buffered emits nothing', () => {
    const { b, records, runTasks } = batch();
    b.flush();
    b.push(PING);
    b.flush();
    runTasks(); // the scheduled flush finds an empty batch
    expect(records).toHaveLength(1);
  });

  it(`flushes once ${RECORD_FLUSH_THRESHOLD} bytes are buffered, without the scheduler`, () => {
    const { b, records, tasks } = batch();
    const chunk = 4096;
    let pushed = 0;
    while (records.length === 0) {
      b.pushData(1, pattern(chunk, pushed));
      pushed++;
    }
    expect(records[0].length).toBeGreaterThanOrEqual(RECORD_FLUSH_THRESHOLD);
    expect(records[0].length).toBeLessThan(RECORD_FLUSH_THRESHOLD + chunk + FRAME_HEADER_SIZE);
    expect(tasks).toHaveLength(1); // the scheduled flush was never needed
    expect(framesOf(records[0])).toHaveLength(1); // the small writes were joined into one DATA frame
    expect(dataOf(records)).toEqual(concat(Array.from({ length: pushed }, (_, i) => pattern(chunk, i))));
  });

  it('joins consecutive writes to one stream into one DATA frame, never across another frame or stream', () => {
    const { b, records, runTasks } = batch();
    b.pushData(1, pattern(4096, 1));
    b.pushData(1, pattern(4096, 2));
    b.pushData(3, pattern(100, 3));
    b.pushData(1, pattern(10, 4));
    b.push(WINDOW_UPDATE);
    b.pushData(1, pattern(20, 5));
    b.pushData(1, pattern(30, 6));
    runTasks();
    expect(records).toHaveLength(1);
    expect(framesOf(records[0]).map((f) => [f.type, f.stream, f.type === FrameType.DATA ? f.data.length : 0])).toEqual([
      [FrameType.DATA, 1, 8192],
      [FrameType.DATA, 3, 100],
      [FrameType.DATA, 1, 10],
      [FrameType.WINDOW_UPDATE, WINDOW_UPDATE.stream, 0],
      [FrameType.DATA, 1, 50],
    ]);
    expect(dataOf(records, 1)).toEqual(concat([pattern(4096, 1), pattern(4096, 2), pattern(10, 4), pattern(20, 5), pattern(30, 6)]));
  });

  it('a joined DATA frame never continues into the next record', () => {
    const { b, records, runTasks } = batch();
    b.pushData(1, pattern(RECORD_FLUSH_THRESHOLD - 100, 1));
    b.pushData(1, pattern(300, 2)); // crosses the threshold: the record leaves with one frame
    b.pushData(1, pattern(5, 3)); // the next record starts with a new frame
    b.pushData(1, pattern(7, 4));
    runTasks();
    const sizes = records.map((r) => framesOf(r).map((f) => (f.type === FrameType.DATA ? f.data.length : -1)));
    expect(sizes).toEqual([[RECORD_FLUSH_THRESHOLD + 200], [12]]);
    expect(dataOf(records)).toEqual(concat([pattern(RECORD_FLUSH_THRESHOLD - 100, 1), pattern(300, 2), pattern(5, 3), pattern(7, 4)]));
  });

  it('splits large writes into DATA frames of at most MAX_FRAME_PAYLOAD, records of at most MAX_RECORD_SIZE', () => {
    const { b, records, runTasks } = batch();
    const big = pattern(3 * MAX_FRAME_PAYLOAD + 12345);
    b.pushData(7, big);
    runTasks();
    const frames = records.flatMap(framesOf);
    expect(frames.map((f) => (f.type === FrameType.DATA ? f.data.length : -1))).toEqual([
      MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD, 12345,
    ]);
    for (const r of records) expect(r.length).toBeLessThanOrEqual(MAX_RECORD_SIZE);
    expectSameBytes(dataOf(records, 7), big);
  });

  it('never lets a record grow past MAX_RECORD_SIZE, even with many frames between flushes', () => {
    const { b, records, runTasks } = batch();
    for (let i = 0; i < 20; i++) {
      b.push({ type: FrameType.RST, stream: 2 * i + 1, code: 0, message: 'x'.repeat(500) });
      b.pushData(2 * i + 1, pattern(MAX_FRAME_PAYLOAD - 1000, i));
    }
    runTasks();
    for (const r of records) expect(r.length).toBeLessThanOrEqual(MAX_RECORD_SIZE);
    expect(records.flatMap(framesOf)).toHaveLength(40);
  });

  it('copies in pushData: the caller may reuse its buffer at once', () => {
    const { b, records, runTasks } = batch();
    const buf = pattern(1000);
    const original = buf.slice();
    b.pushData(1, buf);
    buf.fill(0xff);
    b.pushData(1, buf.subarray(0, 10));
    runTasks();
    expect(dataOf(records)).toEqual(concat([original, new Uint8Array(10).fill(0xff)]));
  });

  it('an emitted record is never written to again', () => {
    const { b, records, runTasks } = batch();
    b.pushData(1, pattern(50));
    b.flush();
    const snapshot = records[0].slice();
    b.pushData(1, pattern(5000, 3));
    b.push({ ...WINDOW_UPDATE, increment: 99 } satisfies Frame);
    runTasks();
    expect(records[0]).toEqual(snapshot);
    expect(records).toHaveLength(2);
  });

  it('a zero-length pushData adds no frame', () => {
    const { b, records, tasks } = batch();
    b.pushData(1, new Uint8Array(0));
    expect(b.pendingBytes).toBe(0);
    expect(tasks).toHaveLength(0);
    expect(records).toHaveLength(0);
  });

  it('with room: records keep head bytes before and tail bytes after them, and their buffers are reused', () => {
    const records: Uint8Array[] = [];
    const b = new RecordBatch((r) => void records.push(r), () => {}, [], { head: 4, tail: 16 });
    const data = pattern(RECORD_FLUSH_THRESHOLD * 3 + 1000);
    for (let off = 0; off < data.length; off += 65536) b.pushData(1, data.subarray(off, off + 65536)); // socket reads
    b.flush();
    expect(records.length).toBeGreaterThanOrEqual(3);
    for (const r of records) {
      expect(r.byteOffset).toBe(4);
      expect(r.buffer.byteLength - (r.byteOffset + r.length)).toBeGreaterThanOrEqual(16);
      expect(r.length).toBeLessThanOrEqual(MAX_RECORD_SIZE);
    }
    expectSameBytes(dataOf(records), data);
    expect(b.pendingBytes).toBe(0);

    // A record handed back is reused for a later one (once), with the same room around it.
    const first = records[0];
    b.recycle(first);
    b.recycle(first);
    const before = records.length;
    b.pushData(2, pattern(RECORD_FLUSH_THRESHOLD));
    b.pushData(2, pattern(RECORD_FLUSH_THRESHOLD));
    b.flush();
    const reused = records.slice(before).filter((r) => r.buffer === first.buffer);
    expect(reused).toHaveLength(1);
    expect(reused[0].byteOffset).toBe(4);
    // A view that is not one of this batch's records (another offset) is not taken.
    const foreign = new Uint8Array(64 * 1024).subarray(8);
    b.recycle(foreign);
    b.pushData(3, pattern(RECORD_FLUSH_THRESHOLD));
    b.flush();
    expect(records.some((r) => r.buffer === foreign.buffer)).toBe(false);
  });

  it('spares: at most room.spares kept, the largest win when full; a record takes the smallest that fits; trim keeps 4', () => {
    const records: Uint8Array[] = [];
    const spares: Uint8Array[] = [];
    const b = new RecordBatch((r) => void records.push(r), () => {}, spares, { head: 8, tail: 16, spares: 6 });
    const emit = (bytes: number) => {
      b.pushData(1, pattern(bytes));
      b.flush();
      return records[records.length - 1];
    };
    const small = Array.from({ length: 6 }, () => emit(100)); // 16 KiB buffers
    const large = Array.from({ length: 3 }, () => emit(RECORD_FLUSH_THRESHOLD - 100));
    for (const r of small) b.recycle(r);
    expect(spares).toHaveLength(6);
    for (const r of large) b.recycle(r); // full: each replaces a smaller spare
    expect(spares.map((x) => x.length).sort((x, y) => y - x).slice(0, 3).every((n) => n >= RECORD_FLUSH_THRESHOLD)).toBe(true);
    expect(spares).toHaveLength(6);
    // A small record leaves the large spares for large records (the batch's next buffer is sized like the last).
    emit(100);
    expect(spares.filter((x) => x.length >= RECORD_FLUSH_THRESHOLD)).toHaveLength(3);
    b.trimSpares();
    expect(spares).toHaveLength(4);
    expect(spares.filter((x) => x.length >= RECORD_FLUSH_THRESHOLD)).toHaveLength(3); // the largest stay
  });
});
