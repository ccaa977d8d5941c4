// The store reuses the memory of deleted objects (SegmentPool), and only once no process maps it
// (issue "Every get sees the object as stored, and puts and pulls write at memory speed").
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { ObjectRef } from '@shoal/protocol';
import { ObjectStore } from '@shoal/store';
import { Child, eventually } from './helpers.js';

const MiB = 1 << 20;

/** A store of its own; `shared` puts its session in /dev/shm itself, where other processes look. */
function storeFor(t: TestContext, objectStoreMemory = 64 * MiB, shared = false): ObjectStore {
  const root = shared ? undefined : mkdtempSync('/dev/shm/reuse-test-');
  const store = new ObjectStore({ ...(root ? { shmRoot: root } : {}), handleSignals: false, objectStoreMemory });
  t.after(() => {
    store.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });
  return store;
}

/** The inode of object `ref`'s segment file: the same inode means the same memory. */
function inodeOf(store: ObjectStore, ref: ObjectRef): number {
  return statSync(join(store.directory, ref.id)).ino;
}

/** Bytes of every file in the session directory (what the store holds in /dev/shm). */
function directoryBytes(store: ObjectStore): number {
  return readdirSync(store.directory).reduce((sum, name) => sum + statSync(join(store.directory, name)).size, 0);
}

describe('memory of deleted objects is reused', () => {
  test('a put after a free of about the same size writes into the freed memory', (t) => {
    const store = storeFor(t);
    const a = store.put(new Float64Array(MiB / 8).fill(1));
    const inode = inodeOf(store, a);
    store.free(a);
    assert.ok(store.stats().reusableBytes >= MiB, 'the freed memory is kept');
    const b = store.put(new Float64Array(MiB / 8 - 100).fill(2));
    assert.equal(inodeOf(store, b), inode, 'the new object is in the same file');
    assert.equal(store.stats().reusableBytes, 0);
    const view = store.getSync(b);
    assert.equal(view.length, MiB / 8 - 100);
    assert.ok(view.every((x) => x === 2), 'and reads back whole');
    const c = store.put(new Float64Array(4 * MiB / 8).fill(3));
    assert.notEqual(inodeOf(store, c), inode, 'an object that does not fit takes new memory');
  });

  test('a reused page is never visible through a mapping that still exists (same process)', async (t) => {
    const store = storeFor(t, 256 * MiB);
    const a = store.put(new Float64Array(MiB / 8).fill(1));
    const inode = inodeOf(store, a);
    let view: Float64Array | undefined = store.getSync(a);
    store.free(a);
    const b = store.put(new Float64Array(MiB / 8).fill(2));
    assert.notEqual(inodeOf(store, b), inode, 'memory a view still maps is not reused');
    assert.ok(view.every((x) => x === 1), "A's view still shows A");
    assert.ok(store.getSync(b).every((x) => x === 2));
    // Once the view is collected, the next put of that size reuses A's memory.
    view = undefined;
    const kept: ObjectRef[] = [];
    await eventually(() => {
      const c = store.put(new Float64Array(MiB / 8).fill(3));
      kept.push(c);
      return inodeOf(store, c) === inode;
    }, "A's memory to be reused once its view was collected");
    assert.ok(store.getSync(kept.at(-1)! as ObjectRef<Float64Array>).every((x) => x === 3));
    for (const ref of kept) store.free(ref);
  });

  test('a reused page is never visible to another process that maps the old object; its SIGKILL frees the memory for reuse', async (t) => {
    const store = storeFor(t, 64 * MiB, true);
    const a = store.put(new Float64Array(MiB / 8).fill(1));
    const inode = inodeOf(store, a);
    await using holder = new Child(['hold', JSON.stringify(a)]);
    assert.deepEqual(await holder.message(), { first: 1, sum: MiB / 8 });
    store.free(a);
    const b = store.put(new Float64Array(MiB / 8).fill(2));
    assert.notEqual(inodeOf(store, b), inode, 'memory another process maps is not reused');
    holder.process.send('check');
    assert.deepEqual(await holder.message(), { first: 1, sum: MiB / 8 }, "the other process's view is unchanged");
    store.free(b); // b's file is idle now: take it so the next put must look at A's
    const b2 = store.put(new Float64Array(MiB / 8).fill(4));
    holder.process.kill('SIGKILL');
    await holder.exited;
    const c = store.put(new Float64Array(MiB / 8).fill(5));
    assert.equal(inodeOf(store, c), inode, 'once the process died, its memory is reused');
    assert.ok(store.getSync(c).every((x) => x === 5));
    assert.ok(store.getSync(b2).every((x) => x === 4));
  });

  test('near the capacity, a put the size of a freed object still reuses its memory', (t) => {
    const store = storeFor(t, 64 * MiB);
    const a = store.put(new Uint8Array(40 * MiB).fill(1));
    const inode = inodeOf(store, a);
    store.free(a);
    const b = store.put(new Uint8Array(40 * MiB).fill(2));
    assert.equal(inodeOf(store, b), inode, 'the freed file was reused, not dropped to make room for itself');
    const stats = store.stats();
    assert.ok(stats.usedBytes >= 40 * MiB && stats.usedBytes + stats.reusableBytes <= stats.capacity);
  });

  test('kept memory never takes room the capacity would give an object', (t) => {
    const capacity = 8 * MiB;
    const store = storeFor(t, capacity);
    const refs = [store.put(new Uint8Array(3 * MiB)), store.put(new Uint8Array(3 * MiB))];
    for (const ref of refs) store.free(ref);
    assert.ok(store.stats().reusableBytes >= 6 * MiB);
    const other = store.put(new Uint8Array(5 * MiB)); // fits neither kept file
    const stats = store.stats();
    assert.ok(stats.usedBytes + stats.reusableBytes <= capacity, `${stats.usedBytes} used + ${stats.reusableBytes} kept > ${capacity}`);
    assert.ok(directoryBytes(store) <= capacity + 2 * 64 * 1024, 'the session directory holds no more than the capacity');
    store.free(other);
  });

  test('closing the store leaves nothing in /dev/shm', () => {
    const root = mkdtempSync('/dev/shm/reuse-test-');
    try {
      const store = new ObjectStore({ shmRoot: root, handleSignals: false });
      store.free(store.put(new Uint8Array(2 * MiB)));
      assert.ok(store.stats().reusableBytes > 0);
      store.close();
      assert.deepEqual(readdirSync(root), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
