import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { test } from 'node:test';
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
