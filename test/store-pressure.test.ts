// Integration tests of finding 4 of issue 18: memory pressure reaches the garbage collector. Refs
// a program dropped are collected when a put does not fit, so the put succeeds instead of failing
// with ObjectStoreFullError while V8 saw no reason to collect (a small heap).
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { store } from 'shoal';
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
