// Integration tests of retries that must not collide with what a dead attempt left behind, and of
// nested tasks past maxWorkers: extra workers up to the hard cap, and a clear error beyond it.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { WorkerLimitError, get, remote } from 'shoal';
import { cleanUp, markerDirectory, nextFile, ownSessionDirectories, remember, start, workerPids } from './runtime-helpers.js';

afterEach(cleanUp);

/** The one session directory of this process (its path). */
function sessionDirectory(): string {
  const [name] = ownSessionDirectories();
  assert.ok(name, 'a session directory of this process');
  return join('/dev/shm', name);
}

/** Files in the session directory that are neither the node's own nor segments of `kept`. */
function strayFiles(directory: string, kept: readonly string[] = []): string[] {
  return readdirSync(directory).filter((name) => !name.startsWith('node') && name !== 'owner.json' && !kept.includes(name));
}

describe('a worker killed while writing a large result', () => {
  test('the retry succeeds with the right value and no partial file is left', { timeout: 60_000 }, async () => {
    await start({ numCpus: 1 });
    const directory = markerDirectory();
    const large = remote(async (dir: string) => {
      const { existsSync, renameSync, writeFileSync } = await import('node:fs');
      const first = !existsSync(`${dir}/started`);
      if (first) {
        writeFileSync(`${dir}/started`, '');
        writeFileSync(`${dir}/.tmp`, '');
        renameSync(`${dir}/.tmp`, `${dir}/attempt-${process.pid}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      // 64 MiB: long enough to write that the test kills the first attempt in the middle.
      return new Float64Array(8 << 20).fill(first ? 1 : 2);
    });
    const ref = large(directory);
    const victim = Number((await nextFile(directory, 'attempt-')).slice('attempt-'.length));
    remember(victim);
    const session = sessionDirectory();
    const path = join(session, ref.id);
    // Polled every turn (this process is the node: it answers the result's room request in
    // between) until the result's file exists, then the kill lands while the worker fills it.
    const deadline = Date.now() + 20_000;
    while (!existsSync(path) && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    assert.ok(existsSync(path), 'the first attempt started writing its result');
    process.kill(victim, 'SIGKILL');
    const result = await get(ref);
    assert.ok(result instanceof Float64Array);
    assert.equal(result.length, 8 << 20);
    assert.equal(result[0], 2, 'the value is the retry’s');
    assert.equal(result[result.length - 1], 2);
    assert.deepEqual(strayFiles(session, [ref.id]), [], 'nothing but the result is left');
  });
});

/** A parent that awaits one child of its own (which naps first, so the parent is surely blocked). */
const parent = remote(async (x: number) => {
  const shoal = await import('shoal');
  const napThenTimesTen = shoal.remote((y: number, ms: number) => new Promise<number>((resolve) => setTimeout(() => resolve(y * 10), ms)));
  const value = await shoal.get(napThenTimesTen(x, 20));
  return value + 1;
});

describe('nested tasks past maxWorkers', () => {
  for (const parents of [16, 50]) {
    test(`${parents} parents each awaiting a child finish with maxWorkers: 4`, { timeout: 120_000 }, async () => {
      const session = await start({ numCpus: 2, maxWorkers: 4 });
      const xs = Array.from({ length: parents }, (_, x) => x);
      assert.deepEqual(await get(xs.map((x) => parent(x))), xs.map((x) => x * 10 + 1));
      const alive = workerPids(session).length;
      assert.ok(alive > 4 && alive <= 64, `workers beyond maxWorkers, within the hard cap (${alive})`);
    });
  }

  test('past maxBlockedWorkers the newest task fails with WorkerLimitError naming the cap, no hang', { timeout: 60_000 }, async () => {
    await start({ numCpus: 2, maxWorkers: 2, maxBlockedWorkers: 3 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, x) => get(parent(x))));
    const failed = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as Error] : []));
    assert.ok(failed.length > 0, 'some parents fail');
    for (const error of failed) {
      // A parent fails with the TaskError of the child it awaited, or itself could not start.
      const limit = error instanceof WorkerLimitError ? error : (error.cause as Error | undefined);
      assert.equal(limit?.name, 'WorkerLimitError', String(error));
      assert.match(limit!.message, /all 3 worker processes .*`maxBlockedWorkers`/);
    }
    for (const [x, result] of results.entries()) if (result.status === 'fulfilled') assert.equal(result.value, x * 10 + 1);
  });
});
