// Issue 14, "a cut stream reaches the target as a clean end", on the Node exit peer: a stream reset by the client
// or a session the room drops must reach the target as a TCP RST (ECONNRESET there), never as a FIN, so that a
// truncated upload cannot look complete. (The exit already did this through link/socket-bridge.ts; this pins it.)
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ExitPeer } from '../../src/exit/index';
import { nodeCrypto } from '../../src/crypto/node';
import { deriveRoomKeys } from '../../src/crypto/room';
import { generateKey } from '../../src/cli/args';
import { connectClient, fixedLookup, openStream, StandInRoom, waitFor } from './room-stand-in';

const ROOM_SECRET = generateKey(); // room secrets must be keygen output (issue 14)

interface Upload { received: () => number; ended: Promise<'fin' | 'reset' | string> }

let workerKey: Uint8Array;
let psk: Uint8Array;
let roomId: Uint8Array;
let room: StandInRoom;
let peer: ExitPeer | null;
let target: Server;
let targetPort = 0;
let uploads: Upload[];
const sockets = new Set<Socket>();

beforeAll(async () => {
  workerKey = new Uint8Array(randomBytes(32));
  ({ psk, roomId } = await deriveRoomKeys(nodeCrypto, ROOM_SECRET));
});

beforeEach(async () => {
  room = await StandInRoom.start({ workerKey, roomId });
  uploads = [];
  target = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    let received = 0;
    s.on('data', (c: Buffer) => (received += c.length));
    const ended = new Promise<string>((resolve) => {
      s.on('end', () => resolve('fin'));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNRESET' ? 'reset' : String(e.code)));
    });
    uploads.push({ received: () => received, ended });
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  targetPort = (target.address() as AddressInfo).port;
  peer = await ExitPeer.start({
    relay: room.url, key: workerKey, roomSecret: ROOM_SECRET, allowLan: true, lookup: fixedLookup({}), log: () => {},
  });
  await room.waitForExit();
});

afterEach(async () => {
  await peer?.close();
  await room.close();
  for (const s of sockets) s.destroy();
  sockets.clear();
  await new Promise<void>((r) => target.close(() => r()));
});

/** A client stream to the target that has delivered 64 KiB of an upload it never finishes. */
async function unfinishedUpload() {
  const client = await connectClient(room, psk);
  const { stream, code } = await openStream(client.mux, '127.0.0.1', targetPort);
  expect(code).toBe(0);
  stream.write(new Uint8Array(64 * 1024));
  await waitFor(() => uploads.length === 1 && uploads[0].received() === 64 * 1024, 'the target to receive 64 KiB');
  return { client, stream, upload: uploads[0] };
}

describe('exit peer: a cut stream reaches its target as a reset', () => {
  it('stream RST from the client → ECONNRESET at the target, not a FIN', async () => {
    const { stream, upload } = await unfinishedUpload();
    stream.reset();
    expect(await upload.ended).toBe('reset');
  });

  it('the room dropping the session → ECONNRESET at the target, not a FIN', async () => {
    const { client, upload } = await unfinishedUpload();
    client.session.close('client went away');
    expect(await upload.ended).toBe('reset');
  });
});
