// Integration tests of finding 4 of issue 18: memory pressure reaches the garbage collector. Refs
// a program dropped are collected when a put does not fit, so the put succeeds instead of failing
// with ObjectStoreFullError while V8 saw no reason to collect (a small heap).
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { get, remote, store } from 'shoal';
import { cleanUp, start } from './runtime-helpers.js';

afterEach(cleanUp);

const MiB = 1024 ** 2;

test('a loop that drops its refs runs 1,500 iterations in a 256 MiB store', { timeout: 120_000 }, async () => {
  await start({ numCpus: 1, objectStoreMemory: 256 * MiB });
  // One 8 MiB array, put again and again: the JS heap stays a few MB, so V8 has no reason to
  // collect the dropped refs by itself (only 32 of these fit at once).
  const data = new Float64Array(MiB).fill(1);
  for (let i = 0; i < 1500; i++) {
    const ref = store.put(data);
    assert.equal(ref.owner, store.stats().sessionId);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(store.stats().usedBytes <= 256 * MiB);
});

test('refs a worker dropped are collected when a task result does not fit', { timeout: 120_000 }, async () => {
  await start({ numCpus: 2, objectStoreMemory: 64 * MiB });
  // A parent task makes 40 children of 8 MiB one after the other and drops each ref: only 7 fit
  // at once, and the worker's small heap gives V8 no reason to collect the dropped ones.
  const parent = remote(async (children: number) => {
    const shoal = await import('shoal');
    const child = shoal.remote(() => new Uint8Array(8 * 1024 * 1024).fill(5));
    for (let i = 0; i < children; i++) {
      const ref = child();
      const { ready } = await shoal.wait([ref], { numReturns: 1 });
      if (ready.length !== 1) throw new Error('a child did not finish');
    }
    // The last one is read: every child's result was stored, none refused.
    return (await shoal.get(child()))[0];
  });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, store.stats().usedBytes)), 5);
  try {
    assert.equal(await get(parent(40)), 5);
  } finally {
    clearInterval(sampler);
  }
  assert.ok(peak <= 64 * MiB, `the store never held more than its capacity (peak ${peak} bytes)`);
});
