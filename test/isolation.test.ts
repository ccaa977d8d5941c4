// Every get sees the object as stored: a write through a view stays in the views it was made
// through, whichever process or task made it (issue "Every get sees the object as stored").
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { get, remote, store, wait, type ObjectRef } from 'shoal';
import { eventually } from './helpers.js';
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

describe('memory a task read is reused once the object is freed', () => {
  test("a freed argument's memory is reused: the worker that mapped it lets go without being asked to", async () => {
    await start({ numCpus: 1 });
    const length = (64 << 20) / 8;
    const a = store.put(new Float64Array(length).fill(1));
    const inode = statSync(join(store.stats().directory, a.id)).ino;
    assert.equal(await first(a), 1);
    store.free(a);
    const kept: ObjectRef[] = [];
    try {
      await eventually(() => {
        const next = store.put(new Float64Array(length).fill(2));
        kept.push(next);
        return statSync(join(store.stats().directory, next.id)).ino === inode;
      }, "the argument's memory to be reused after the worker unmapped it");
      assert.equal(await first(kept.at(-1)! as ObjectRef<Float64Array>), 2);
    } finally {
      for (const ref of kept) store.free(ref);
    }
  });
});

describe('task results are written into reused memory', () => {
  test("a result written where a freed result was: same memory, the new bytes, and the old result's reader unaffected", async () => {
    await start({ numCpus: 1 });
    const make = remote((n: number, fill: number) => new Float64Array(n).fill(fill));
    const n = (4 << 20) / 8;
    const directory = store.stats().directory;
    const a = make(n, 1);
    await wait([a]); // ready, and never mapped here
    const inode = statSync(join(directory, a.id)).ino;
    store.free(a);
    const b = make(n, 2);
    const value = await b;
    assert.equal(statSync(join(directory, b.id)).ino, inode, "the worker filled the freed result's file");
    assert.equal(value.length, n);
    assert.ok(value.every((x) => x === 2));
    // A view the driver holds keeps that memory out of reuse: the next result gets new memory.
    store.free(b);
    const c = make(n, 3);
    assert.ok((await c).every((x) => x === 3));
    assert.notEqual(statSync(join(directory, c.id)).ino, inode, 'memory a view still maps is not lent');
    assert.ok(value.every((x) => x === 2), "the held view still shows its object's bytes");
  });
});
