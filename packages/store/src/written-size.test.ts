// What another process says it wrote is checked before it is counted: the size capacity charges
// is the bytes' (inline) or the file's (segment), and a grant given for a result that came back
// inline is given back.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ObjectCorruptError, newObjectId } from '@shoal/protocol';
import { ObjectStore } from './object-store.js';

function storeFor(t: TestContext): ObjectStore {
  const root = mkdtempSync('/dev/shm/store-test-');
  const store = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: 1 << 20, inlineThreshold: 1024 });
  t.after(() => {
    store.close();
    rmSync(root, { recursive: true, force: true });
  });
  return store;
}

test('an inline payload whose size is not its bytes is refused before it is counted', (t) => {
  const store = storeFor(t);
  const id = newObjectId();
  assert.throws(() => store.register(id, { size: 1, bytes: new Uint8Array(4000), contains: [] }), /says it has 1 bytes but carries 4000/);
  assert.equal(store.stats().usedBytes, 0);
  assert.equal(store.status(id).state, 'freed');
});

test('a segment file longer than its writer said is refused and removed, not charged by the word', (t) => {
  const store = storeFor(t);
  const id = newObjectId();
  store.expect(id);
  store.hold(id);
  // Another process of the session wrote 64 KiB and claims 2 KiB.
  writeFileSync(join(store.directory, id), new Uint8Array(64 * 1024));
  store.register(id, { size: 2048, contains: [] });
  const status = store.status(id);
  assert.equal(status.state, 'failed');
  assert.ok(status.state === 'failed' && status.error instanceof ObjectCorruptError, 'failed as corrupt');
  assert.match(String(status.state === 'failed' && status.error.message), /holds 65536 bytes, its writer said 2048/);
  assert.equal(store.stats().usedBytes, 0);
  assert.deepEqual(readdirSync(store.directory).filter((name) => name !== 'owner.json'), []);
});

test('room granted for a result that comes back inline is given back', (t) => {
  const store = storeFor(t);
  const id = newObjectId();
  store.expect(id);
  store.hold(id);
  store.reserveRoom(id, 512 * 1024);
  assert.equal(store.stats().usedBytes, 512 * 1024, 'the grant is counted while the result is written');
  // The retry's result was small: it arrives inline, and nothing will charge the grant.
  store.register(id, { size: 16, bytes: new Uint8Array(16), contains: [] });
  assert.ok(store.stats().usedBytes < 512 * 1024, `the grant was given back (${store.stats().usedBytes} bytes used)`);
});
