// Every get sees the object as stored: a write through a view stays in the views it was made
// through, whichever process or task made it (issue "Every get sees the object as stored").
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { get, remote, store } from 'shoal';
import { cleanUp, start } from './runtime-helpers.js';

afterEach(cleanUp);

const first = remote((a: Float64Array) => a[0]);
// Each holds its worker for a while, so tasks sent at once land on different workers.
const scribble = remote(async (a: Float64Array) => {
  a[0] = 42;
  a[a.length - 1] = 43;
  await new Promise((resolve) => setTimeout(resolve, 100));
  return [a[0], a[a.length - 1], process.pid];
});
const firstAndLast = remote(async (a: Float64Array) => {
  await new Promise((resolve) => setTimeout(resolve, 100));
  return [a[0], a[a.length - 1], process.pid];
});

for (const numCpus of [1, 2]) {
  describe(`tasks that write their arguments, with ${numCpus} worker${numCpus === 1 ? '' : 's'}`, () => {
    test('a later, unrelated task sees the stored bytes, not an earlier task\'s writes', async () => {
      await start({ numCpus });
      const ref = store.put(new Float64Array(1 << 20));
      assert.equal(await first(ref), 0);
      const writers = new Set<number>();
      // Enough writes that every worker has run one (a pid per worker is checked below).
      for (let i = 0; i < 8 && writers.size < numCpus; i++) {
        for (const [a0, last, pid] of (await get(Array.from({ length: numCpus }, () => scribble(ref)))) as number[][]) {
          assert.deepEqual([a0, last], [42, 43], 'the writing task sees its own writes');
          writers.add(pid!);
        }
      }
      assert.equal(writers.size, numCpus, 'every worker ran a writing task');
      const readers = new Set<number>();
      for (let i = 0; i < 8 && readers.size < numCpus; i++) {
        for (const [a0, last, pid] of (await get(Array.from({ length: numCpus }, () => firstAndLast(ref)))) as number[][]) {
          assert.deepEqual([a0, last], [0, 0], 'a later task reads the stored bytes');
          readers.add(pid!);
        }
      }
      assert.deepEqual([...readers].sort(), [...writers].sort(), 'the readers ran on the workers that wrote');
      assert.equal(store.getSync(ref)[0], 0, 'the driver sees the stored bytes too');
    });
  });
}

describe('writes never leave their process', () => {
  test("a task's write reaches neither the driver nor a task running at the same time", async () => {
    await start({ numCpus: 2 });
    const ref = store.put(new Float64Array(1 << 18).fill(1));
    const held = store.getSync(ref);
    const writeAndHold = remote(async (a: Float64Array, ms: number) => {
      a.fill(9);
      await new Promise((resolve) => setTimeout(resolve, ms));
      return a[100];
    });
    const watch = remote(async (a: Float64Array, ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      let sum = 0;
      for (let i = 0; i < a.length; i++) sum += a[i]!;
      return sum;
    });
    const [written, sum] = await get([writeAndHold(ref, 300), watch(ref, 150)]);
    assert.equal(written, 9);
    assert.equal(sum, 1 << 18, 'the other task read the stored bytes');
    assert.equal(held[100], 1, "a view the driver held before is untouched");
    assert.equal(store.getSync(ref)[100], 1);
  });

  test('a task reading a ref the driver wrote through sees the stored bytes', async () => {
    await start({ numCpus: 1 });
    const ref = store.put(new Float64Array(1 << 18).fill(1));
    const view = store.getSync(ref);
    view[0] = -5;
    assert.equal(await first(ref), 1);
    assert.equal(view[0], -5, 'the driver keeps its write');
    assert.equal(store.getSync(ref)[0], 1);
  });
});
