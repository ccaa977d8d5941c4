// Integration tests of finding 6 of issue 18: the store's capacity holds for every writer, not
// only for the driver's own puts. A task result asks for room before it is written; a worker's or
// an attached program's put that does not fit is refused when it arrives, and leaves no file.
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { FrameDecoder, encodeFrame, newObjectId } from '@shoal/protocol';
import { ObjectRef, ObjectStoreFullError, get, remote, store, type ShoalSession } from 'shoal';
import { LIVENESS_MS, cleanUp, start, until } from './runtime-helpers.js';

afterEach(cleanUp);

const MiB = 1024 ** 2;

/** Segment files of the session: everything but the node's own files. */
function segmentFiles(session: ShoalSession): string[] {
  return readdirSync(session.directory).filter((name) => !name.startsWith('node') && name !== 'owner.json');
}

const isFull = (error: unknown) => error instanceof ObjectStoreFullError;

test('a 100 MiB task result into a 64 MiB store fails with ObjectStoreFullError and leaves nothing', { timeout: 60_000 }, async () => {
  const session = await start({ numCpus: 1, objectStoreMemory: 64 * MiB });
  const big = remote(() => new Uint8Array(100 * 1024 * 1024).fill(7));
  await assert.rejects(get(big()), isFull);
  assert.deepEqual(segmentFiles(session), [], 'no file of the result is left in the session directory');
  assert.equal(store.stats().usedBytes, 0, 'no bytes are counted');
  // The node still works: a result that fits is stored.
  const small = remote(() => new Uint8Array(8 * 1024 * 1024).fill(1));
  assert.equal((await get(small()))[0], 1);
});

test('a result refused room is retried under retryExceptions, and the retry that fits is its result', { timeout: 60_000 }, async () => {
  const session = await start({ numCpus: 1, objectStoreMemory: 64 * MiB });
  const marker = join(session.directory, 'node-test-attempts');
  // The first attempt's 100 MiB can never fit; the retry's 1 MiB does.
  const shrinking = remote(
    (path: string) => {
      const fs = require('node:fs') as typeof import('node:fs');
      const first = !fs.existsSync(path);
      fs.writeFileSync(path, 'x');
      return new Uint8Array((first ? 100 : 1) * 1024 * 1024).fill(first ? 1 : 2);
    },
    { retryExceptions: true, maxRetries: 2 },
  );
  const result = await get(shrinking(marker));
  assert.equal(result.byteLength, MiB, 'the retry’s result, not the refusal');
  assert.equal(result[0], 2);
});

test('two 40 MiB results at once into a 64 MiB store: one is stored, the other fails cleanly', { timeout: 60_000 }, async () => {
  const session = await start({ numCpus: 2, objectStoreMemory: 64 * MiB });
  const forty = remote(async (fill: number) => {
    const array = new Uint8Array(40 * 1024 * 1024).fill(fill);
    // Both tasks hold their result before either writes it: they do run at once.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return array;
  });
  const refs = [forty(1), forty(2)];
  const outcomes = await Promise.allSettled(refs.map((ref) => get(ref)));
  const stored = outcomes.filter((outcome) => outcome.status === 'fulfilled');
  const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
  assert.equal(stored.length, 1, 'one result is stored');
  assert.equal(refused.length, 1, 'the other is refused');
  assert.ok(isFull(refused[0]!.reason), `refused with ObjectStoreFullError, got ${String(refused[0]!.reason)}`);
  const kept = refs[outcomes.indexOf(stored[0]!)]!;
  assert.deepEqual(segmentFiles(session), [kept.id], 'only the stored result has a file');
  assert.ok(store.stats().usedBytes <= 64 * MiB, `within the capacity (${store.stats().usedBytes} bytes used)`);
});

test('a put made in a worker beyond the capacity fails and leaves no file', { timeout: 60_000 }, async () => {
  const session = await start({ numCpus: 1, objectStoreMemory: 64 * MiB });
  // The refused put is an object that is that failure: reading it fails (here, inside the task).
  const reader = remote(async () => {
    const { get, store } = await import('shoal');
    return get(store.put(new Uint8Array(80 * 1024 * 1024).fill(3)));
  });
  await assert.rejects(get(reader()), (error: unknown) => (error as Error & { cause?: { code?: string } }).cause?.code === 'ERR_OBJECT_STORE_FULL');
  assert.deepEqual(segmentFiles(session), [], 'the refused put left no file');
  assert.equal(store.stats().usedBytes, 0);
});

test('an attached put beyond the capacity fails, and a bad reservation size closes only its connection', { timeout: 60_000 }, async () => {
  const session = await start({ numCpus: 1, objectStoreMemory: 16 * MiB });
  const socket = connect(join(session.directory, 'node.sock'));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const decoder = new FrameDecoder();
  const received: { type: string }[] = [];
  socket.on('data', (chunk) => received.push(...(decoder.push(chunk) as { type: string }[])));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(encodeFrame({ type: 'attach', pid: process.pid }));
  await until(() => received.some((message) => message.type === 'welcome'), 'the welcome', LIVENESS_MS);

  // An attached program writes its segment itself, then tells the node: 20 MiB into 16 MiB.
  const id = newObjectId();
  writeFileSync(join(session.directory, id), new Uint8Array(20 * MiB));
  socket.write(encodeFrame({ type: 'put', id, payload: { size: 20 * MiB, contains: [] } }));
  // One connection's messages are handled in order: once this is answered, the put was.
  socket.write(encodeFrame({ type: 'lookup', requestId: 1, name: 'nothing' }));
  await until(() => received.some((message) => message.type === 'looked-up'), 'the lookup answer', LIVENESS_MS);
  const ref = ObjectRef.from<Uint8Array>({ $shoalRef: 1, id, owner: session.sessionId });
  await assert.rejects(get(ref), isFull);
  assert.deepEqual(segmentFiles(session), [], 'the refused put’s file is removed');
  assert.equal(store.stats().usedBytes, 0);

  // Room is reserved only by a worker, for the result of a task it runs: an attached program's
  // request is refused and takes nothing (it could otherwise grow the books, or replace another
  // writer's grant, with ids of its choosing).
  socket.write(encodeFrame({ type: 'reserve', requestId: 3, id: newObjectId(), size: 8 * MiB }));
  await until(() => received.some((message) => message.type === 'reserved'), 'the reservation answer', LIVENESS_MS);
  assert.ok((received.find((message) => message.type === 'reserved') as { error?: Uint8Array }).error, 'the reservation is refused');
  assert.equal(store.stats().usedBytes, 0, 'and nothing is reserved');

  // A reservation whose size is not a count never reaches the books: the connection closes.
  socket.write(encodeFrame({ type: 'reserve', requestId: 2, id: newObjectId(), size: -1 }));
  await closed;
  assert.equal(store.stats().usedBytes, 0);
  assert.equal(store.getSync(store.put(new Uint8Array(4 * MiB).fill(9)))[0], 9, 'the node keeps serving');
});
