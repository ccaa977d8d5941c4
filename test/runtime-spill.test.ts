// Spilling with tasks (issue "Memory beyond RAM"): a local node whose store is smaller than the
// objects its driver and tasks use. Real worker processes, real files: the spill directory is a
// temporary root per test, removed after it.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, test, type TestContext } from 'node:test';
import { remote, store, type ObjectRef } from 'shoal';
import { eventually } from './helpers.js';
import { cleanUp, start } from './runtime-helpers.js';
import { checksum, filled } from './support/spill-values.js';

afterEach(cleanUp);

const MIB = 1 << 20;

/** A fresh spill root for the test, removed after it. */
function spillRoot(t: TestContext): string {
  const root = mkdtempSync(join(tmpdir(), 'shoal-spill-runtime-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

/** Bytes the session's files take in /dev/shm. */
function shmBytes(directory: string): number {
  return readdirSync(directory).reduce((sum, name) => sum + statSync(join(directory, name)).size, 0);
}

// The same sum as `checksum`, in the workers (it travels as source).
const checksumTask = remote((values: Float64Array) => {
  let sum = 0;
  for (let i = 0; i < values.length; i += 97) sum += values[i]! * (i + 1);
  return sum + values[values.length - 1]!;
});
const checksumsTask = remote((...all: Float64Array[]) =>
  all.map((values) => {
    let sum = 0;
    for (let i = 0; i < values.length; i += 97) sum += values[i]! * (i + 1);
    return sum + values[values.length - 1]!;
  }),
);

test('a 256 MiB node takes 1 GiB of objects (sixteen 64 MiB, a thousand 100 KiB); tasks and the driver read each back right; /dev/shm stays within the capacity', { timeout: 300_000 }, async (t) => {
  const capacity = 256 * MIB;
  const session = await start({ numCpus: 2, objectStoreMemory: capacity, spillDirectory: spillRoot(t) });
  const big: { ref: ObjectRef<Float64Array>; sum: number }[] = [];
  const small: { ref: ObjectRef<Float64Array>; sum: number }[] = [];
  let peak = 0;
  for (let i = 0; i < 16; i++) {
    const values = filled(64 * MIB, i + 1);
    big.push({ ref: store.put(values), sum: checksum(values) });
    peak = Math.max(peak, shmBytes(session.directory));
  }
  for (let i = 0; i < 1000; i++) {
    const values = filled(100 * 1024, i + 17);
    small.push({ ref: store.put(values), sum: checksum(values) });
  }
  assert.ok(store.stats().spill.spilledBytes > 700 * MIB, `most of it went to disk (${store.stats().spill.spilledBytes} bytes)`);
  // In tasks: each big one alone (two run at once), the small ones fifty to a task.
  const bigSums = await Promise.all(big.map(({ ref }) => checksumTask(ref)));
  peak = Math.max(peak, shmBytes(session.directory));
  assert.deepEqual(bigSums, big.map(({ sum }) => sum));
  const batches: Promise<number[]>[] = [];
  for (let i = 0; i < small.length; i += 50) batches.push(Promise.resolve(checksumsTask(...small.slice(i, i + 50).map(({ ref }) => ref))));
  assert.deepEqual((await Promise.all(batches)).flat(), small.map(({ sum }) => sum));
  peak = Math.max(peak, shmBytes(session.directory));
  // In the driver, after the tasks.
  for (const { ref, sum } of [...big, ...small]) {
    assert.equal(checksum(await store.get(ref)), sum, `object ${ref.id} reads back as put`);
  }
  peak = Math.max(peak, shmBytes(session.directory));
  assert.ok(peak <= capacity + 4096, `/dev/shm held ${peak} bytes at most, within the ${capacity} capacity`);
  const spill = store.stats().spill;
  assert.ok(spill.restores >= 16, `the tasks read spilled objects back (${spill.restores} restores)`);
});

test('the argument of a running task is never spilled from under it: puts spill the others, and the task reads its argument whole', { timeout: 120_000 }, async (t) => {
  const root = spillRoot(t);
  await start({ numCpus: 1, objectStoreMemory: 160 * MIB, spillDirectory: root });
  const flags = mkdtempSync(join(tmpdir(), 'shoal-spill-flags-'));
  t.after(() => rmSync(flags, { recursive: true, force: true }));
  const values = filled(64 * MIB, 5);
  const ref = store.put(values);
  // The task maps its argument, says so, and holds it until told to go on.
  const held = remote(async (array: Float64Array, directory: string) => {
    const { existsSync: exists, writeFileSync: write } = require('node:fs') as typeof import('node:fs');
    const before = array[12345]!;
    write(`${directory}/started`, '');
    while (!exists(`${directory}/go`)) await new Promise((resolve) => setTimeout(resolve, 20));
    let sum = 0;
    for (let i = 0; i < array.length; i += 97) sum += array[i]! * (i + 1);
    return [before, sum + array[array.length - 1]!];
  })(ref, flags);
  await eventually(() => existsSync(join(flags, 'started')), 'the task started');
  // Three more objects of 64 MiB do not fit beside it: the ones before them are spilled, never it.
  const others = [1, 2, 3].map((seed) => store.put(filled(64 * MIB, seed)));
  assert.ok(store.stats().spill.spills >= 1, 'the others were spilled to make room');
  assert.ok(store.stats().usedBytes <= 160 * MIB);
  writeFileSync(join(flags, 'go'), '');
  const [before, sum] = (await held) as [number, number];
  assert.equal(before, values[12345]);
  assert.equal(sum, checksum(values), 'the task read its argument whole');
  for (const [i, other] of others.entries()) assert.equal((await store.get(other))[1], filled(64 * MIB, i + 1)[1]);
});
