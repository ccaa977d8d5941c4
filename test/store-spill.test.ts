// Spilling (issue 10): a store whose memory is full writes least recently used objects nobody
// maps to its spill directory and reads them back on use. Real stores, real files: the spill
// directory on disk (a temporary root per test), a small tmpfs for the full disk.
import assert from 'node:assert/strict';
import { execFileSync, fork } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { ObjectStoreFullError, type ObjectRef } from '@shoal/protocol';
import { ObjectStore, type StoreOptions } from '@shoal/store';
import { checksum, filled } from './support/spill-values.js';

const MIB = 1 << 20;

/** A store with its spill directory under a fresh temporary root; both removed after the test. */
function storeFor(t: TestContext, options: StoreOptions & { spillRoot?: string }): ObjectStore {
  const spillRoot = options.spillRoot ?? mkdtempSync(join(tmpdir(), 'shoal-spill-test-'));
  const { spillRoot: _, ...storeOptions } = options;
  const store = new ObjectStore({ handleSignals: false, spillDirectory: spillRoot, ...storeOptions });
  t.after(() => {
    store.close();
    if (!options.spillRoot) rmSync(spillRoot, { recursive: true, force: true });
  });
  return store;
}

/** Bytes the session directory's files take in /dev/shm. */
function shmBytes(store: ObjectStore): number {
  return readdirSync(store.directory).reduce((sum, name) => sum + statSync(join(store.directory, name)).size, 0);
}

/** A tmpfs of `size` (`8m`) mounted on a fresh directory for the test: a disk that fills up. Undefined when not root. */
function smallDisk(t: TestContext, size: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const disk = mkdtempSync(join(tmpdir(), 'shoal-spill-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', disk]);
  t.after(() => {
    execFileSync('umount', [disk]);
    rmSync(disk, { recursive: true, force: true });
  });
  return disk;
}

test('a 256 MiB store takes 1 GiB of objects (sixteen 64 MiB, a thousand 100 KiB); each reads back right; /dev/shm stays within the capacity', { timeout: 300_000 }, async (t) => {
  const capacity = 256 * MIB;
  const store = storeFor(t, { objectStoreMemory: capacity });
  const expected = new Map<ObjectRef<Float64Array>, number>();
  let peak = 0;
  for (let i = 0; i < 16; i++) {
    const values = filled(64 * MIB, i + 1);
    expected.set(store.put(values), checksum(values));
    peak = Math.max(peak, shmBytes(store));
  }
  for (let i = 0; i < 1000; i++) {
    const values = filled(100 * 1024, i + 17);
    expected.set(store.put(values), checksum(values));
    if (i % 100 === 0) peak = Math.max(peak, shmBytes(store));
  }
  const spilled = store.stats().spill;
  assert.ok(spilled.spilledBytes > 700 * MIB, `most of it went to disk (${spilled.spilledBytes} bytes)`);
  for (const [ref, sum] of expected) {
    assert.equal(checksum(await store.get(ref)), sum, `object ${ref.id} reads back as put`);
    peak = Math.max(peak, shmBytes(store));
  }
  assert.ok(peak <= capacity + 4096, `/dev/shm held ${peak} bytes at most, within the ${capacity} capacity`);
  assert.ok(store.stats().usedBytes <= capacity);
  const stats = store.stats().spill;
  assert.ok(stats.restores > 0 && stats.spills >= stats.restores, `spills ${stats.spills}, restores ${stats.restores}`);
});

test('an object a view maps is never spilled: the view reads it, and puts that need its room fail naming what could not be spilled', (t) => {
  const store = storeFor(t, { objectStoreMemory: 64 * MIB });
  const held = store.put(filled(40 * MIB, 3));
  const view = store.getSync(held);
  assert.throws(
    () => store.put(filled(40 * MIB, 4)),
    (error: unknown) => error instanceof ObjectStoreFullError && /spilling to disk could free only 0 bytes: the other objects are mapped by a process/.test(error.message),
  );
  assert.equal(store.stats().spill.spilledObjects, 0);
  assert.equal(checksum(view), checksum(filled(40 * MIB, 3)));
  assert.ok(existsSync(join(store.directory, held.id)), 'its segment is where it was');
});

test('a freed spilled object leaves the disk; close removes the spill directory', (t) => {
  const store = storeFor(t, { objectStoreMemory: 32 * MIB });
  const first = store.put(filled(20 * MIB, 1));
  store.put(filled(20 * MIB, 2));
  assert.equal(store.stats().spill.spilledObjects, 1, 'the first went to disk to make room for the second');
  const spillDirectory = join(store.options.spillDirectory as string, `shoal-${store.sessionId}`);
  assert.ok(readdirSync(spillDirectory).some((name) => name.startsWith('batch.')));
  store.free(first);
  assert.deepEqual(readdirSync(spillDirectory), ['owner.json'], 'its batch file went with it');
  assert.equal(store.stats().spill.spilledBytes, 0);
  store.close();
  assert.ok(!existsSync(spillDirectory));
});

test('spilling to a full disk is ObjectStoreFullError naming the disk’s error; nothing stored is lost', (t) => {
  const disk = smallDisk(t, '8m');
  if (!disk) return t.skip('needs root to mount a small tmpfs');
  const store = storeFor(t, { objectStoreMemory: 32 * MIB, spillRoot: disk });
  const refs = [1, 2].map((seed) => store.put(filled(12 * MIB, seed)));
  assert.throws(
    () => store.put(filled(12 * MIB, 3)),
    (error: unknown) => error instanceof ObjectStoreFullError && /spilling 12\.0 MiB to make room failed: .*ENOSPC.*free space there/.test(error.message),
  );
  for (const [i, ref] of refs.entries()) assert.equal(checksum(store.getSync(ref)), checksum(filled(12 * MIB, i + 1)));
  assert.equal(store.stats().spill.spilledObjects, 0);
});

test('an object read and let go of is spilled to bring another back: nothing of the read (the decoder included) keeps it mapped', async (t) => {
  const store = storeFor(t, { objectStoreMemory: 40 * MIB });
  const a = store.put(filled(20 * MIB, 1));
  const b = store.put(filled(20 * MIB, 2)); // a goes to disk
  assert.equal(checksum(store.getSync(b)), checksum(filled(20 * MIB, 2)));
  // b is in this process's cache now; bringing a back needs b's room: the get lets the cache go
  // of b and, once b is unmapped, spills it.
  assert.equal(checksum(await store.get(a)), checksum(filled(20 * MIB, 1)));
  assert.equal(checksum(await store.get(b)), checksum(filled(20 * MIB, 2)));
  store.free(a);
  store.free(b);
  assert.deepEqual([store.stats().usedBytes, store.stats().segments, store.stats().spill.spilledBytes], [0, 0, 0], 'the books are back to nothing');
});

test('an object read back keeps its copy on disk: spilling it again writes nothing, and freeing it deletes the copy', async (t) => {
  const store = storeFor(t, { objectStoreMemory: 40 * MIB });
  const a = store.put(filled(20 * MIB, 1));
  const b = store.put(filled(20 * MIB, 2)); // a goes to disk
  assert.equal(checksum(await store.get(a)), checksum(filled(20 * MIB, 1))); // b goes, a comes back
  const before = store.stats().spill;
  assert.deepEqual([before.spills, before.spilledObjects, before.diskBytes > 40 * MIB], [2, 1, true], 'both were written once; a is in memory with its copy kept');
  assert.equal(checksum(await store.get(b)), checksum(filled(20 * MIB, 2))); // a goes again: from its copy
  const after = store.stats().spill;
  assert.deepEqual([after.spills, after.spillBytesTotal, after.restores], [2, before.spillBytesTotal, 2], 'spilling a again wrote nothing');
  store.free(a);
  store.free(b);
  const spillDirectory = join(store.options.spillDirectory as string, `shoal-${store.sessionId}`);
  assert.deepEqual(readdirSync(spillDirectory), ['owner.json'], 'the copies went with their objects');
  assert.deepEqual([store.stats().spill.diskBytes, store.stats().spill.spilledBytes], [0, 0]);
});

test('a full spill disk holding copies of objects in memory: the copies go and the spill goes through', async (t) => {
  const disk = smallDisk(t, '28m');
  if (!disk) return t.skip('needs root to mount a small tmpfs');
  const store = storeFor(t, { objectStoreMemory: 26 * MIB, spillRoot: disk });
  const [a, b] = [1, 2].map((seed) => store.put(filled(12 * MIB, seed))); // both in memory
  store.put(filled(12 * MIB, 3)); // a to disk (12 MiB there)
  assert.equal(checksum(await store.get(a!)), checksum(filled(12 * MIB, 1))); // b to disk, a back with its copy kept: 24 MiB there
  // Spilling the third to bring b back finds 4 MiB free: a's copy goes (a is in memory), then it fits.
  assert.equal(checksum(await store.get(b!)), checksum(filled(12 * MIB, 2)));
  assert.equal(checksum(await store.get(a!)), checksum(filled(12 * MIB, 1)));
});

test('a store SIGKILLed after spilling leaves its spill directory to the next session under the same root, which removes it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'shoal-spill-test-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const child = fork(fileURLToPath(new URL('./fixtures/spill-child.ts', import.meta.url)), [root, 'shoal-test-child'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(() => child.kill('SIGKILL'));
  const report = await new Promise<{ directory: string; spilled: number; spillDirectory: string }>((resolve, reject) => {
    child.once('message', (message) => resolve(message as never));
    child.once('exit', (code) => reject(new Error(`the child exited (${code}) before reporting`)));
  });
  assert.equal(report.spilled, 1);
  assert.ok(readdirSync(report.spillDirectory).some((name) => name.startsWith('batch.')), 'its batch file is on disk');
  child.kill('SIGKILL');
  await exited;
  assert.ok(existsSync(report.spillDirectory), 'a killed process removes nothing');
  // The next session under the same root sweeps it when it first spills.
  const store = storeFor(t, { objectStoreMemory: 20 * MIB, spillRoot: root });
  for (let i = 1; i <= 3; i++) store.put(filled(8 * MIB, i));
  assert.ok(!existsSync(report.spillDirectory), 'the dead session’s spill directory is gone');
  assert.ok(!existsSync(report.directory), 'and its /dev/shm session directory');
  assert.equal(store.stats().spill.spilledObjects, 1);
});
