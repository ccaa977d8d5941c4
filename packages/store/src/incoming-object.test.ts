import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ObjectRef, ObjectStoreFullError } from '@shoal/protocol';
import { ObjectStore } from './object-store.js';

const CAPACITY = 1 << 20;

/** A store in a fresh temporary root, removed (with anything left in it) after the test. */
function storeFor(t: TestContext): ObjectStore {
  const root = mkdtempSync('/dev/shm/store-test-');
  const store = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: CAPACITY, inlineThreshold: 1024 });
  t.after(() => {
    store.close();
    rmSync(root, { recursive: true, force: true });
  });
  return store;
}

/**
 * Files in the session directory besides the owner file and the memory kept for reuse (`pool.N`,
 * counted in `reusableBytes`, checked by {@link reusedFiles}).
 */
function segmentFiles(store: ObjectStore): string[] {
  return readdirSync(store.directory).filter((name) => name !== 'owner.json' && !/^(pool|drain|new)\./.test(name));
}

/** Files of memory kept for reuse: `reusableBytes` counts their bytes. */
function reusedFiles(store: ObjectStore): number {
  const files = readdirSync(store.directory).filter((name) => /^(pool|drain)\./.test(name));
  const bytes = files.reduce((sum, name) => sum + statSync(join(store.directory, name)).size, 0);
  assert.equal(store.stats().reusableBytes, bytes, 'what the store keeps for reuse is counted');
  return files.length;
}

/** The serialized bytes of an object big enough for a segment, made by a store of its own. */
function serialized(t: TestContext, length: number): { id: string; bytes: Uint8Array } {
  const source = storeFor(t);
  const ref = source.put(new Float64Array(length).map((_, i) => i));
  return { id: ref.id, bytes: source.segmentBytes(ref.id).slice() };
}

test('an object written in chunks and sealed reads back as the original and counts in capacity', (t) => {
  const store = storeFor(t);
  const { id, bytes } = serialized(t, 4096);
  const incoming = store.acceptIncoming(id, bytes.byteLength);
  assert.equal(store.stats().usedBytes, bytes.byteLength, 'reserved up front');
  assert.equal(store.status(id).state, 'freed', 'no get sees it before seal');
  for (let offset = 0; offset < bytes.byteLength; offset += 10_000) {
    incoming.write(bytes.subarray(offset, offset + 10_000), offset);
  }
  assert.equal(incoming.state, 'written');
  incoming.seal([]);
  const value = store.getSync(new ObjectRef<Float64Array>(id, store.sessionId));
  assert.equal(value[4095], 4095);
  assert.deepEqual([store.stats().usedBytes, store.stats().segments], [bytes.byteLength, 1]);
  incoming.discard();
  assert.equal(store.status(id).state, 'ready', 'discard after seal does nothing');
});

test('an object filled in place through target() reads back as the original; a target past the size is refused', (t) => {
  const store = storeFor(t);
  const { id, bytes } = serialized(t, 4096);
  const incoming = store.acceptIncoming(id, bytes.byteLength);
  // As a socket reads: whatever it got into the view, then the rest.
  const first = incoming.target(1000);
  first.set(bytes.subarray(0, 600));
  incoming.wrote(600);
  assert.equal(incoming.written, 600);
  assert.throws(() => incoming.target(bytes.byteLength), RangeError, 'only what is left may be targeted');
  const rest = incoming.target(bytes.byteLength - 600);
  rest.set(bytes.subarray(600));
  assert.throws(() => incoming.wrote(bytes.byteLength), RangeError);
  incoming.wrote(rest.byteLength);
  assert.equal(incoming.state, 'written');
  assert.throws(() => incoming.target(1), /it is written/);
  incoming.seal([]);
  const value = store.getSync(new ObjectRef<Float64Array>(id, store.sessionId));
  assert.equal(value[4095], 4095);
});

test('an object that does not fit is refused before any file is made', (t) => {
  const store = storeFor(t);
  assert.throws(
    () => store.acceptIncoming('big', CAPACITY + 1, ', so an object from another node cannot be pulled here'),
    (error: unknown) => error instanceof ObjectStoreFullError && /cannot be pulled here/.test(error.message),
  );
  assert.deepEqual(segmentFiles(store), []);
  assert.equal(store.stats().usedBytes, 0);
});

test('discard removes the file and returns the reservation, once', (t) => {
  const store = storeFor(t);
  const incoming = store.acceptIncoming('half', 2048);
  incoming.write(new Uint8Array(1024), 0);
  assert.deepEqual(segmentFiles(store), [], 'no file has its id before it is whole: no get can see it half-written');
  incoming.discard();
  incoming.discard();
  assert.deepEqual(segmentFiles(store), []);
  assert.equal(reusedFiles(store), 1, "the discarded object's memory is kept for the next one");
  assert.equal(store.stats().usedBytes, 0);
  assert.throws(() => incoming.write(new Uint8Array(1), 1024), /it is discarded/);
  assert.throws(() => incoming.seal([]), /already discarded/);
});

test('a chunk out of bounds, or a seal before every byte arrived, is refused', (t) => {
  const store = storeFor(t);
  const incoming = store.acceptIncoming('short', 100);
  assert.throws(() => incoming.write(new Uint8Array(10), 95), RangeError);
  incoming.write(new Uint8Array(50), 0);
  assert.throws(() => incoming.seal([]), /50 of its 100 bytes/);
  store.discardUnclaimed('short');
  assert.equal(incoming.state, 'discarded');
  assert.deepEqual(segmentFiles(store), []);
});

test('registering a written incoming object settles the pending entry with its reservation', async (t) => {
  const store = storeFor(t);
  const { id, bytes } = serialized(t, 1024);
  store.expect(id);
  store.hold(id);
  const incoming = store.acceptIncoming(id, bytes.byteLength);
  incoming.write(bytes, 0);
  store.register(id, { size: bytes.byteLength, contains: [] });
  await store.whenSettled(id);
  assert.equal(incoming.state, 'sealed');
  assert.equal(store.stats().usedBytes, bytes.byteLength, 'counted once');
  store.release(id);
  assert.deepEqual(segmentFiles(store), [], 'the sealed object goes by reference counting');
  assert.equal(store.stats().usedBytes, 0);
});

test('discardUnclaimed removes a file nobody registered, never a stored object', (t) => {
  const store = storeFor(t);
  const kept = store.put(new Uint8Array(4096));
  const incoming = store.acceptIncoming('result', 0);
  incoming.seal([]);
  store.freeId('result');
  store.discardUnclaimed(kept.id);
  assert.deepEqual(segmentFiles(store), [kept.id]);
  assert.equal(store.getSync(kept).byteLength, 4096);
  store.discardUnclaimed('never-written');
});

test('a stored segment opened for reading yields its bytes in chunks, even once freed', (t) => {
  const store = storeFor(t);
  const ref = store.put(new Uint8Array(5000).fill(7));
  const expected = store.segmentBytes(ref.id).slice();
  const outgoing = store.openForRead(ref.id);
  store.free(ref);
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < outgoing.size; offset += 1000) chunks.push(outgoing.chunk(offset, Math.min(1000, outgoing.size - offset)));
  assert.deepEqual(new Uint8Array(Buffer.concat(chunks)), expected);
  assert.throws(() => store.openForRead(ref.id), { code: 'ERR_OBJECT_FREED' });
});

test('closing the store discards what is still arriving and leaves nothing behind', (t) => {
  const store = storeFor(t);
  const incoming = store.acceptIncoming('arriving', 4096);
  incoming.write(new Uint8Array(100), 0);
  const directory = store.directory;
  store.close();
  assert.equal(incoming.state, 'discarded');
  assert.throws(() => readdirSync(directory), { code: 'ENOENT' });
  assert.throws(() => store.acceptIncoming('late', 1), { code: 'ERR_STORE_CLOSED' });
});
