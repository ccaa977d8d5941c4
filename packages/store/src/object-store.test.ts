import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { ObjectFreedError, ObjectRef, encodeValue, newObjectId, writeInline } from '@shoal/protocol';
import { ObjectStore } from './object-store.js';

test('listeners hear segment objects added and deleted, in order, and can be removed', (t) => {
  const root = mkdtempSync('/dev/shm/store-test-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  using store = new ObjectStore({ shmRoot: root, handleSignals: false, inlineThreshold: 1024 });
  const heard: string[] = [];
  const first = (id: string, size: number) => heard.push(`add ${id} ${size > 0}`);
  store.on('add', first).on('add', (id) => heard.push(`again ${id}`));
  store.on('delete', (id) => heard.push(`delete ${id}`));
  store.put(new Uint8Array(10)); // inline: not announced
  const ref = store.put(new Uint8Array(4096));
  store.free(ref);
  store.off('add', first);
  const other = store.put(new Uint8Array(4096));
  assert.deepEqual(heard, [`add ${ref.id} true`, `again ${ref.id}`, `delete ${ref.id}`, `again ${other.id}`]);
});

test('closing a store leaves the ref hooks another store installed since', (t) => {
  const root = mkdtempSync('/dev/shm/store-test-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const first = new ObjectStore({ shmRoot: root, handleSignals: false });
  using second = new ObjectStore({ shmRoot: root, handleSignals: false, inlineThreshold: 1024 });
  first.close();
  const ref = second.put(new Uint8Array(4096));
  // Released by hand, the ref is counted out through the hooks: the object goes.
  ref.release();
  assert.equal(second.has(ref), false);
});

/** An inline payload of `value`, as a worker's task result arrives. */
function inline(value: unknown): { size: number; bytes: Uint8Array; contains: string[] } {
  const bytes = writeInline(encodeValue(value));
  return { size: bytes.byteLength, bytes, contains: [] };
}

test('getAll gives every value in order, pending, ready and segment objects alike', async (t) => {
  const root = mkdtempSync('/dev/shm/store-test-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  using store = new ObjectStore({ shmRoot: root, handleSignals: false, inlineThreshold: 1024 });
  const pending = Array.from({ length: 1000 }, () => {
    const id = newObjectId();
    store.expect(id);
    return new ObjectRef<number>(id, store.sessionId);
  });
  const ready = store.put(-1);
  const segment = store.put(new Float64Array(1024).fill(7));
  const all = store.getAll<unknown>([...pending, ready, segment, pending[0]!]);
  // Settled out of order: the values still come in the order asked.
  for (let i = pending.length - 1; i >= 0; i--) store.register(pending[i]!.id, inline(i));
  const values = await all;
  assert.deepEqual(values.slice(0, 1000), Array.from({ length: 1000 }, (_, i) => i));
  assert.equal(values[1000], -1);
  assert.equal((values[1001] as Float64Array)[1023], 7);
  assert.equal(values[1002], 0, 'a ref given twice is read twice');
  assert.deepEqual(await store.getAll([]), []);
});

test('getAll rejects with the first failure as it happens, not after the others settle', async (t) => {
  const root = mkdtempSync('/dev/shm/store-test-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  using store = new ObjectStore({ shmRoot: root, handleSignals: false });
  const [slow, failing] = [newObjectId(), newObjectId()];
  store.expect(slow);
  store.expect(failing);
  const refs = [new ObjectRef(slow, store.sessionId), new ObjectRef(failing, store.sessionId)];
  const all = store.getAll(refs);
  const error = new Error('the task failed');
  store.fail(failing, error);
  await assert.rejects(all, (thrown) => thrown === error);
  // The slow one settles later: nothing is woken twice, and a get of it alone still works.
  store.register(slow, inline('late'));
  assert.equal(await store.get(refs[0]!), 'late');
  // An object that failed before the call rejects at once, though another is still pending.
  const other = newObjectId();
  store.expect(other);
  await assert.rejects(store.getAll([new ObjectRef(other, store.sessionId), refs[1]!]), (thrown) => thrown === error);
  store.register(other, inline(1));
});

test('a pending object freed while a getAll waits for it rejects the get with ObjectFreedError', async (t) => {
  const root = mkdtempSync('/dev/shm/store-test-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  using store = new ObjectStore({ shmRoot: root, handleSignals: false });
  const id = newObjectId();
  store.expect(id);
  const ref = new ObjectRef(id, store.sessionId);
  const all = store.getAll([ref]);
  const one = store.get(ref);
  let settled = 0;
  store.onSettled(id, () => (settled += 1));
  store.free(ref);
  await assert.rejects(all, ObjectFreedError);
  await assert.rejects(one, ObjectFreedError);
  assert.equal(settled, 1, 'each of the three waiters of one entry is woken once');
});
