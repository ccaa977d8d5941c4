// Integration tests of the local runtime with real worker processes: init/shutdown, tasks and
// their arguments and results, chaining, nested refs, nested tasks, closure detection and
// functions compiled from TypeScript. Failures are in runtime-failures.test.ts.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { platform } from 'node:os';
import { afterEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  GetTimeoutError,
  ObjectRef,
  RuntimeShutdownError,
  ShoalError,
  TaskCancelledError,
  cancel,
  get,
  init,
  remote,
  shutdown,
  store,
  wait,
} from 'shoal';
import { cleanUp, isAlive, markerDirectory, parentPid, sleep, start, until, workerPids } from './runtime-helpers.js';

const RUNTIME_CHILD = fileURLToPath(new URL('./fixtures/runtime-child.ts', import.meta.url));

afterEach(cleanUp);

/** A task that sleeps `ms` then returns `value`. */
const sleepy = remote(async (ms: number, value: string) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return value;
});

describe('init and shutdown', () => {
  test('init twice with the same options is the same session; other options reject', async () => {
    const first = await start({ numCpus: 2 });
    const second = await init({ numCpus: 2 });
    assert.equal(second.sessionId, first.sessionId);
    assert.deepEqual(second.workerPids().sort(), first.workerPids().sort());
    await assert.rejects(init({ numCpus: 1 }), (error: unknown) => {
      assert.ok(error instanceof ShoalError);
      assert.equal(error.code, 'ERR_ALREADY_INITIALIZED');
      return true;
    });
    // The running session is unaffected by the rejected init.
    assert.equal(await remote((a: number, b: number) => a + b)(2, 3), 5);
  });

  test('numCpus: 2 prestarts 2 worker processes, children of this process, that run the tasks', async () => {
    const session = await start({ numCpus: 2 });
    const pids = workerPids(session);
    assert.equal(pids.length, 2);
    assert.equal(new Set(pids).size, 2);
    for (const pid of pids) {
      assert.ok(isAlive(pid), `worker ${pid} is alive`);
      assert.equal(parentPid(pid), process.pid, `worker ${pid} is a child of the driver`);
      assert.notEqual(pid, process.pid);
    }
    const ranIn = await remote(() => process.pid)();
    assert.ok(pids.includes(ranIn), `the task ran in a worker (${ranIn} in ${pids.join(', ')})`);
  });

  test('shutdown kills every worker, removes the session directory, and is idempotent', async () => {
    const session = await start({ numCpus: 2 });
    const pids = workerPids(session);
    assert.ok(existsSync(session.directory));
    assert.equal(await remote((x: number) => x * 2)(21), 42);
    await shutdown();
    await until(() => pids.every((pid) => !isAlive(pid)), 'the workers to exit after shutdown()');
    assert.ok(!existsSync(session.directory), 'the session directory is removed');
    assert.deepEqual(session.workerPids(), []);
    await shutdown();
    await Promise.all([shutdown(), session.shutdown()]);
  });

  test('shutdown while tasks run fails them and still cleans up', async () => {
    const session = await start({ numCpus: 1 });
    const pids = workerPids(session);
    const running = sleepy(30_000, 'never');
    const queued = sleepy(0, 'never either');
    // Asked for before shutdown (a get after shutdown would start a new session), and settled
    // into values so that the rejections are not unhandled while shutdown() runs.
    const results = [get(running), get(queued)].map((promise) => promise.then(() => 'resolved', (error: unknown) => error));
    await shutdown();
    for (const result of await Promise.all(results)) {
      assert.ok(result instanceof RuntimeShutdownError, `got ${String(result)}`);
      assert.equal(result.code, 'ERR_RUNTIME_SHUTDOWN');
    }
    await until(() => pids.every((pid) => !isAlive(pid)), 'the workers to exit after shutdown()');
    assert.ok(!existsSync(session.directory));
  });

  test('a new session can start after shutdown', async () => {
    const first = await start({ numCpus: 1 });
    await shutdown();
    const second = await start({ numCpus: 1 });
    assert.notEqual(second.sessionId, first.sessionId);
    assert.equal(await remote(() => 'again')(), 'again');
  });

  test('calling a remote function before init() starts the embedded cluster by itself', async () => {
    const double = remote((x: number) => x * 2);
    const ref = double(21); // no init() yet
    assert.ok(ref instanceof ObjectRef);
    assert.equal(await ref, 42);
    // init() with the defaults returns the session the call started.
    const session = await start();
    assert.ok(existsSync(session.directory));
    assert.ok(workerPids(session).length >= 1);
    assert.equal(await double(5), 10);
  });
});

describe('a driver process killed with SIGKILL', () => {
  test('takes its worker processes with it (no orphans); the next session removes its directory', async () => {
    const child = fork(RUNTIME_CHILD, ['hold', 'shoal-test-child'], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    type Report = { pids: number[]; directory: string };
    let report: Report | undefined;
    try {
      report = await new Promise<Report>((resolve, reject) => {
        child.once('message', resolve);
        child.once('exit', (code) => reject(new Error(`the child exited (code ${code}) before reporting`)));
      });
      assert.equal(report.pids.length, 2);
      for (const pid of report.pids) assert.equal(parentPid(pid), child.pid, 'workers are children of the driver');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const { pids, directory } = report;
    await until(() => pids.every((pid) => !isAlive(pid)), 'the workers of the SIGKILLed driver to die');
    // SIGKILL leaves the session directory behind; the next session on the machine sweeps it
    // (on a shared machine another process's new session may already have).
    await start({ numCpus: 1 });
    assert.ok(!existsSync(directory), 'the next session removed the dead driver’s directory');
  });
});

describe('a driver process that never calls shutdown()', () => {
  for (const mode of ['remote', 'store'] as const) {
    test(`exits by itself once its work is done (${mode}), and its workers and session directory go`, async () => {
      const child = fork(RUNTIME_CHILD, [mode, 'shoal-test-child'], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      type Report = { value: unknown; pids: number[]; directory: string };
      let report: Report | undefined;
      try {
        report = await new Promise<Report>((resolve, reject) => {
          child.once('message', resolve);
          child.once('exit', (code) => reject(new Error(`the child exited (code ${code}) before reporting`)));
        });
        assert.ok(report.value === 2 || report.value === true);
        // A program that only used the store started no worker.
        if (mode === 'store') assert.equal(report.pids.length, 0);
        else assert.ok(report.pids.length >= 1);
        // Liveness bound: exiting takes well under a second.
        const ended = await Promise.race([exited, sleep(6_000).then(() => undefined)]);
        assert.ok(ended, 'the driver process is still running 6 s after its last statement');
        assert.deepEqual(ended, { code: 0, signal: null });
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          // SIGTERM lets Shoal remove its session directory; SIGKILL if that does not end it.
          child.kill('SIGTERM');
          if (!(await Promise.race([exited, sleep(5_000).then(() => undefined)]))) child.kill('SIGKILL');
          await exited;
          if (report) rmSync(report.directory, { recursive: true, force: true });
        }
      }
      const { pids, directory } = report;
      await until(() => pids.every((pid) => !isAlive(pid)), 'the child driver’s workers to be gone');
      assert.ok(!existsSync(directory), 'the child driver’s session directory is removed');
    });
  }
});

describe('tasks', () => {
  test('sync and async functions', async () => {
    await start({ numCpus: 2 });
    function add(a: number, b: number) {
      return a + b;
    }
    const addRemote = remote(add);
    const later = remote(async (text: string) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return text.toUpperCase();
    });
    const sync = remote((x: number) => x * 3);
    assert.equal(await addRemote(1, 2), 3);
    assert.equal(await sync(2), 6);
    assert.equal(await later('abc'), 'ABC');
    assert.equal(addRemote.remoteName, 'add');
  });

  test('a task can import Node built-ins and packages of the repository', async () => {
    await start({ numCpus: 2 });
    const builtins = remote(async () => {
      const os = await import('node:os');
      const { createHash } = await import('node:crypto');
      return { platform: os.platform(), hash: createHash('sha1').update('x').digest('hex') };
    });
    const packages = remote(async (value: { a: number[] }) => {
      const { pack, unpack } = await import('msgpackr');
      const { nanoid } = await import('nanoid');
      return { roundTrip: unpack(pack(value)) as { a: number[] }, idLength: nanoid().length };
    });
    const fromBuiltins = await builtins();
    assert.equal(fromBuiltins.platform, platform());
    assert.equal(fromBuiltins.hash, '11f6ad8ec52a2984abaafd7c3b516503785c2072');
    assert.deepEqual(await packages({ a: [1, 2, 3] }), { roundTrip: { a: [1, 2, 3] }, idLength: 21 });
  });

  test('arguments by value and by ObjectRef', async () => {
    await start({ numCpus: 2 });
    const describeArgs = remote((a: { n: number; tags: string[] }, b: Map<string, number>, c: bigint, d: Date) => ({
      n: a.n,
      tags: a.tags.join(','),
      mapSize: b.get('x'),
      big: c * 2n,
      year: d.getUTCFullYear(),
    }));
    const expected = { n: 1, tags: 'p,q', mapSize: 7, big: 10n, year: 2024 };
    const byValue = describeArgs({ n: 1, tags: ['p', 'q'] }, new Map([['x', 7]]), 5n, new Date(Date.UTC(2024, 0, 1)));
    const byRef = describeArgs(
      store.put({ n: 1, tags: ['p', 'q'] }),
      store.put(new Map([['x', 7]])),
      store.put(5n),
      new Date(Date.UTC(2024, 0, 1)),
    );
    assert.deepEqual(await byValue, expected);
    assert.deepEqual(await byRef, expected);
  });

  test('a large Float64Array passed by ref is read in place (64-byte aligned view of the segment)', async () => {
    await start({ numCpus: 2 });
    const n = 1_000_000;
    const ref = store.put(new Float64Array(n).fill(0.5));
    const inspect = remote((array: Float64Array) => {
      let sum = 0;
      for (let i = 0; i < array.length; i++) sum += array[i]!;
      return {
        isFloat64Array: array instanceof Float64Array,
        length: array.length,
        aligned: array.byteOffset % 64 === 0,
        // A copy would own its whole buffer from offset 0; a view of the segment starts after the
        // object's header, inside a buffer as large as the segment.
        view: array.byteOffset > 0 && array.buffer.byteLength > array.byteLength,
        sum,
      };
    });
    assert.deepEqual(await inspect(ref), { isFloat64Array: true, length: n, aligned: true, view: true, sum: n / 2 });
  });

  test('a large array passed by value is stored once and read in place too', async () => {
    await start({ numCpus: 2 });
    const inspect = remote((array: Int32Array) => ({
      aligned: array.byteOffset % 64 === 0,
      view: array.byteOffset > 0,
      last: array[array.length - 1],
    }));
    const array = new Int32Array(200_000).map((_, i) => i);
    assert.deepEqual(await inspect(array), { aligned: true, view: true, last: 199_999 });
  });

  test('a large result comes back whole', async () => {
    await start({ numCpus: 2 });
    const make = remote((n: number) => {
      const array = new Float64Array(n);
      for (let i = 0; i < n; i++) array[i] = i * 0.5;
      return array;
    });
    const segmentsBefore = store.stats().segments;
    const result = await make(1_000_000);
    assert.ok(result instanceof Float64Array);
    assert.equal(result.length, 1_000_000);
    assert.equal(result[0], 0);
    assert.equal(result[123_456], 61_728);
    assert.equal(result[999_999], 499_999.5);
    assert.equal(result.byteOffset % 64, 0);
    assert.equal(store.stats().segments, segmentsBefore + 1, 'the result lives in a segment');
  });

  test('small and structured results', async () => {
    await start({ numCpus: 2 });
    const shapes = remote(() => ({
      nothing: undefined,
      none: null,
      set: new Set([1, 2]),
      nested: { deep: [new Uint8Array([1, 2, 3])] },
      re: /a+b/gi,
    }));
    const value = await shapes();
    assert.deepEqual(value, {
      nothing: undefined,
      none: null,
      set: new Set([1, 2]),
      nested: { deep: [new Uint8Array([1, 2, 3])] },
      re: /a+b/gi,
    });
    assert.equal(await remote(() => undefined)(), undefined);
  });

  test('a task queued while every worker is busy starts on the first worker that frees up', async () => {
    await start({ numCpus: 2 });
    const slow = sleepy(20_000, 'slow'); // worker A
    const quick = sleepy(50, 'quick'); // worker B
    const next = sleepy(0, 'next'); // submitted while both are busy
    assert.equal(await quick, 'quick');
    // Liveness bound, far above the ~50 ms this needs; the slow task takes 20 s.
    const { ready } = await wait([next], { timeoutMs: 5_000 });
    assert.deepEqual(ready, [next], 'next ran on the worker that finished quick, not behind the slow task');
    cancel(slow);
  });

  test('fractional numCpus: two tasks of numCpus 0.5 run at the same time on a 1-CPU node', { timeout: 120_000 }, async () => {
    await start({ numCpus: 1 });
    const directory = markerDirectory();
    // Each task announces itself, then waits until both have: only possible if they run
    // concurrently, in two workers. If they cannot, the test's own timeout fails it.
    const meet = remote(
      async (dir: string) => {
        const { readdirSync, writeFileSync } = await import('node:fs');
        writeFileSync(`${dir}/in-${process.pid}`, '');
        while (readdirSync(dir).length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
        return readdirSync(dir).length;
      },
      { numCpus: 0.5 },
    );
    assert.deepEqual(await get([meet(directory), meet(directory)]), [2, 2]);
  });

  test('get([refs]) returns the values in the order given, not the order finished', async () => {
    await start({ numCpus: 2 });
    const refs = [sleepy(300, 'first'), sleepy(0, 'second'), sleepy(50, 'third'), sleepy(0, 'fourth')] as const;
    assert.deepEqual(await get(refs), ['first', 'second', 'third', 'fourth']);
    assert.deepEqual(await get([]), []);
  });

  test('a task imports a module by a path relative to the file that called remote()', async () => {
    await start({ numCpus: 1 });
    const load = remote(async () => (await import('./fixtures/import-helper.mjs')).value);
    assert.equal(await load(), 'imported next to the caller');
  });

  test('get with timeoutMs or an AbortSignal stops waiting (GetTimeoutError, the signal\'s reason); the task runs on and its result is got later', async () => {
    await start({ numCpus: 1 });
    const slow = sleepy(1500, 'slow');
    await assert.rejects(get(slow, { timeoutMs: 50 }), (error: unknown) => error instanceof GetTimeoutError && error.code === 'ERR_GET_TIMEOUT' && /1 object\(s\) were not ready within 50 ms/.test(error.message));
    await assert.rejects(get([slow, slow], { timeoutMs: 20 }), /2 object\(s\) were not ready within 20 ms/);
    const controller = new AbortController();
    const aborted = get(slow, { signal: controller.signal });
    controller.abort();
    await assert.rejects(aborted, (error: unknown) => (error as Error).name === 'AbortError');
    await assert.rejects(get(slow, { signal: AbortSignal.abort(new Error('gave up')) }), /gave up/, 'an aborted signal rejects at once, with its reason');
    const waiting = new AbortController();
    const waited = wait([slow], { signal: waiting.signal });
    waiting.abort(new Error('no more waiting'));
    await assert.rejects(waited, /no more waiting/);
    assert.equal(await get(slow, { timeoutMs: 60_000, signal: new AbortController().signal }), 'slow', 'the task ran on: its result comes within the bounds');
  });

  test('wait over 10,000 refs: waits on the same refs at once each end right, in the order given, and those that timed out hold nothing up', { timeout: 120_000 }, async () => {
    await start({ numCpus: 2 });
    const square = remote((i: number) => i * i);
    const refs = Array.from({ length: 10_000 }, (_, i) => square(i));
    const ids = (list: readonly { id: string }[]) => list.map((ref) => ref.id);
    // Waits that give up first, on every ref, over and over.
    for (let i = 0; i < 20; i++) {
      const early = await wait(refs, { numReturns: 10_000, timeoutMs: 0 });
      assert.equal(early.ready.length + early.pending.length, 10_000);
    }
    const all = wait(refs, { numReturns: 10_000 });
    const half = wait(refs, { numReturns: 5_000 });
    const twice = wait([...refs, ...refs], { numReturns: 20_000 });
    const first = await wait(refs);
    assert.ok(first.ready.length >= 1);
    assert.deepEqual([...ids(first.ready), ...ids(first.pending)].sort(), ids(refs).sort(), 'each ref once, ready or pending');
    assert.deepEqual(ids(first.ready), ids(refs).filter((id) => new Set(ids(first.ready)).has(id)), 'ready keeps the order given');
    assert.ok((await half).ready.length >= 5_000);
    assert.deepEqual(ids((await all).ready), ids(refs));
    assert.deepEqual((await all).pending, []);
    assert.equal((await twice).ready.length, 20_000, 'a ref given twice counts twice');
    // Round after round of one wait per ready batch, as a loop over results does.
    let pending = Array.from({ length: 10_000 }, (_, i) => square(i));
    let rounds = 0;
    let sum = 0;
    while (pending.length > 0) {
      const next = await wait(pending, { numReturns: Math.min(1_000, pending.length) });
      for (const value of await get(next.ready)) sum += value;
      pending = next.pending;
      rounds += 1;
    }
    assert.ok(rounds <= 10, `${rounds} rounds`);
    assert.equal(sum, Array.from({ length: 10_000 }, (_, i) => i * i).reduce((a, b) => a + b, 0));
  });

  test('wait over 10,000 refs, some ready and one that never is: the same partition, order, numReturns and timeout as with few', { timeout: 120_000 }, async () => {
    await start({ numCpus: 2 });
    const slow = sleepy(60_000, 'slow');
    // 10,000 refs: puts (ready at once) and task results, with the slow one in the middle.
    const square = remote((i: number) => i * i);
    const refs: ObjectRef<unknown>[] = Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? store.put(i) : square(i)));
    refs[5_000] = slow;
    const others = refs.filter((ref) => ref !== slow);
    const timedOut = await wait(refs, { numReturns: 10_000, timeoutMs: 200 });
    if (timedOut.ready.length === 9_999) {
      assert.deepEqual(timedOut.ready, others, 'ready in the order given');
    } else {
      assert.ok(timedOut.ready.length < 9_999, 'a timeout returns what is ready by then');
    }
    assert.ok(timedOut.pending.includes(slow));
    await get(others);
    // Everything but the slow one is ready now: whatever numReturns, ready has all of them.
    for (const numReturns of [0, 1, 5_000, 9_999]) {
      assert.deepEqual(await wait(refs, { numReturns }), { ready: others, pending: [slow] }, `numReturns ${numReturns}`);
    }
    assert.deepEqual(await wait(refs, { numReturns: 10_000, timeoutMs: 10 }), { ready: others, pending: [slow] }, 'timed out');
    // Given twice, each position counts: 19,998 ready are enough for numReturns 19,998.
    const doubled = await wait([...refs, ...refs], { numReturns: 19_998 });
    assert.deepEqual(doubled, { ready: [...others, ...others], pending: [slow, slow] });
    // The benchmark's loop: one wait per ready batch until none is left; each ref comes back once, in order.
    const tasks = Array.from({ length: 10_000 }, (_, i) => square(i));
    const seen: ObjectRef<number>[] = [];
    let pending = tasks;
    while (pending.length > 0) {
      const next = await wait(pending);
      assert.ok(next.ready.length >= 1);
      seen.push(...next.ready);
      pending = next.pending;
    }
    assert.equal(seen.length, 10_000);
    assert.equal(new Set(seen).size, 10_000);
    // A wait on the slow one and the ready ones still ends on its timeout: no waiter is left behind.
    const some: ObjectRef<unknown>[] = [slow, ...tasks.slice(0, 3)];
    assert.deepEqual(await wait(some, { numReturns: 4, timeoutMs: 10 }), { ready: tasks.slice(0, 3), pending: [slow] });
    cancel(slow);
    assert.deepEqual((await wait(refs, { numReturns: 10_000 })).ready, refs, 'a cancelled task counts as ready');
  });

  test('wait in a task over refs it already got asks the node only about the others, with the same answer', { timeout: 60_000 }, async () => {
    await start({ numCpus: 2 });
    const parent = remote(async () => {
      const { ObjectRef, get, remote, wait, cancel } = await import('shoal');
      const value = remote((i: number) => i);
      const slow = remote(async () => new Promise((resolve) => setTimeout(resolve, 60_000)))();
      const refs = Array.from({ length: 2_000 }, (_, i) => value(i));
      await get(refs);
      const known = await wait(refs, { numReturns: 2_000 });
      // Ready at the node but never seen so by these refs (copies made from the JSON form):
      // a poll still reports them.
      const fresh = Array.from({ length: 10 }, (_, i) => value(i));
      await wait(fresh, { numReturns: 10 });
      const copies = fresh.map((ref) => ObjectRef.from(JSON.parse(JSON.stringify(ref))));
      const mixed = [slow, ...refs.slice(0, 5), ...copies];
      const poll = await wait(mixed, { numReturns: 0 });
      const timed = await wait(mixed, { numReturns: mixed.length, timeoutMs: 20 });
      cancel(slow);
      return {
        known: known.ready.length === 2_000 && known.pending.length === 0,
        poll: [poll.ready.length, poll.pending.length, poll.pending[0] === slow, poll.ready[0] === refs[0]],
        timed: [timed.ready.length, timed.pending.length],
      };
    });
    assert.deepEqual(await parent(), { known: true, poll: [15, 1, true, true], timed: [15, 1] });
  });

  test('wait with numReturns and timeoutMs: a slow task stays pending', async () => {
    await start({ numCpus: 2 });
    // The fast ones are submitted first, so they start at once on the two workers.
    const fast1 = sleepy(0, 'fast1');
    const fast2 = sleepy(0, 'fast2');
    const slow = sleepy(30_000, 'slow');
    const refs = [slow, fast1, fast2];

    const two = await wait(refs, { numReturns: 2 });
    assert.deepEqual(two.ready, [fast1, fast2]);
    assert.deepEqual(two.pending, [slow]);

    const timedOut = await wait(refs, { numReturns: 3, timeoutMs: 100 });
    assert.deepEqual(timedOut.ready, [fast1, fast2], 'ready keeps the order given');
    assert.deepEqual(timedOut.pending, [slow]);

    const one = await wait([slow, fast2]);
    assert.deepEqual(one, { ready: [fast2], pending: [slow] });
    // ready holds every ref done by then, not only numReturns of them.
    assert.deepEqual(await wait([fast2, slow, fast1], { numReturns: 1 }), { ready: [fast2, fast1], pending: [slow] });
    // A ref given twice counts twice.
    assert.deepEqual(await wait([fast1, fast1], { numReturns: 2 }), { ready: [fast1, fast1], pending: [] });
    assert.deepEqual(await wait([slow, slow], { numReturns: 2, timeoutMs: 10 }), { ready: [], pending: [slow, slow] });

    const none = await wait([slow], { numReturns: 1, timeoutMs: 10 });
    assert.deepEqual(none, { ready: [], pending: [slow] });

    assert.throws(() => wait(refs, { numReturns: 4 }), TypeError);
    cancel(slow);
    // A failed (cancelled) task counts as ready.
    const all = await wait(refs, { numReturns: 3 });
    assert.deepEqual(all.ready, refs);
  });

  // More than DEEP_BACKLOG ready at once: the workers' queues run deep (scheduling/policies/pipeline.ts).
  const BACKLOG = 3000;

  test('a deep backlog of queued tasks taking refs, nested refs and inline values all resolve, in order, in one get', async () => {
    await start({ numCpus: 2 });
    const array = store.put(Float64Array.from({ length: 100_000 }, (_, i) => i * 2)); // a segment
    const small = store.put({ base: 1000 }); // inline
    const pick = remote((a: Float64Array, i: number) => a[i]! + i);
    const nested = remote((holder: { ref: { id: string } }, id: string) => holder.ref.id === id);
    const add = remote((o: { base: number }, i: number) => o.base + i);
    const refs: ObjectRef<number | boolean>[] = [];
    const expected: (number | boolean)[] = [];
    for (let i = 0; i < BACKLOG; i++) {
      if (i % 3 === 0) refs.push(pick(array, i)), expected.push(i * 3);
      else if (i % 3 === 1) refs.push(nested({ ref: small }, small.id)), expected.push(true);
      else refs.push(add(small, i)), expected.push(1000 + i);
    }
    assert.deepEqual(await get(refs), expected);
  });

  test('cancelling tasks of a deep backlog fails exactly those, whether queued at the node or on a worker; the rest run', async () => {
    await start({ numCpus: 2 });
    const value = remote((i: number) => i);
    const refs = Array.from({ length: BACKLOG }, (_, i) => value(i));
    // Once one result is back, the workers' queues are full: the first cancelled ones are on a
    // worker (recalled), or already running or done; the later ones wait at the node.
    assert.equal(await get(refs[0]!), 0);
    const cancelled = new Set<number>();
    for (let i = 1; i < BACKLOG; i += 3) {
      cancel(refs[i]!);
      cancelled.add(i);
    }
    await assert.rejects(get(refs), TaskCancelledError, 'a get of them all rejects with the cancellation');
    const outcomes = await Promise.allSettled(refs.map((ref) => get(ref)));
    outcomes.forEach((outcome, i) => {
      if (!cancelled.has(i)) assert.deepEqual(outcome, { status: 'fulfilled', value: i });
      else if (i >= 500) assert.ok(outcome.status === 'rejected' && outcome.reason instanceof TaskCancelledError, `task ${i}: ${String(outcome.status)}`);
      else assert.ok(outcome.status === 'fulfilled' ? outcome.value === i : outcome.reason instanceof TaskCancelledError, `task ${i}`);
    });
    assert.equal(await value(-1), -1, 'the workers run tasks after it');
  });
});

describe('chaining and nested refs', () => {
  test("a task's ref passed to another task: the second gets the value, the driver never fetches it", async () => {
    await start({ numCpus: 2 });
    const make = remote((n: number) => new Float64Array(n).fill(2));
    const sum = remote((array: Float64Array) => {
      let total = 0;
      for (let i = 0; i < array.length; i++) total += array[i]!;
      return { isArray: array instanceof Float64Array, total };
    });
    assert.equal(store.stats().cachedMappings, 0);
    const a = make(100_000); // 800 KB: a segment written by the worker
    const b = sum(a);
    assert.deepEqual(await b, { isArray: true, total: 200_000 });
    // The driver has mapped no segment: `a` went from worker to worker through shared memory.
    const stats = store.stats();
    assert.equal(stats.cachedMappings, 0, 'the driver never mapped the intermediate result');
    assert.ok(stats.segments >= 1, 'the intermediate result exists in the store');
    // Control: fetching it in the driver does map it.
    assert.equal((await a).length, 100_000);
    assert.equal(store.stats().cachedMappings, 1);
  });

  test('a chain of small results, submitted before any result exists', async () => {
    await start({ numCpus: 2 });
    const inc = remote(async (x: number) => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return x + 1;
    });
    let ref = inc(0);
    for (let i = 0; i < 5; i++) ref = inc(ref);
    assert.equal(await ref, 6);
  });

  test('a ref nested in an argument arrives as an ObjectRef the task can get', async () => {
    await start({ numCpus: 2 });
    const small = store.put({ x: 41 });
    const large = store.put(new Float64Array(50_000).fill(3));
    const open = remote(async (arg: { inner: ObjectRef<{ x: number }>; list: ObjectRef<Float64Array>[] }) => {
      const { get, ObjectRef } = await import('shoal');
      const inner = await get(arg.inner);
      const array = await get(arg.list[0]!);
      let total = 0;
      for (let i = 0; i < array.length; i++) total += array[i]!;
      return {
        innerIsRef: arg.inner instanceof ObjectRef,
        listIsRef: arg.list[0] instanceof ObjectRef,
        x: inner.x + 1,
        total,
        awaited: (await arg.inner).x,
      };
    });
    assert.deepEqual(await open({ inner: small, list: [large] }), {
      innerIsRef: true,
      listIsRef: true,
      x: 42,
      total: 150_000,
      awaited: 41,
    });
  });

  test('a task result nested in an argument: the task waits for it with get()', async () => {
    await start({ numCpus: 2 });
    const later = sleepy(100, 'produced');
    const consume = remote(async (arg: { ref: ObjectRef<string> }) => {
      const { get } = await import('shoal');
      return `got ${await get(arg.ref)}`;
    });
    assert.equal(await consume({ ref: later }), 'got produced');
  });

  test('a task can put objects and return refs to them', async () => {
    await start({ numCpus: 2 });
    const producer = remote(async () => {
      const { store } = await import('shoal');
      return { small: store.put('hello'), large: store.put(new Uint8Array(300_000).fill(9)) };
    });
    const { small, large } = await producer();
    assert.ok(small instanceof ObjectRef);
    assert.equal(await small, 'hello');
    const bytes = await large;
    assert.equal(bytes.length, 300_000);
    assert.equal(bytes[299_999], 9);
  });
});

describe('nested tasks', () => {
  test('parents that submit and await children complete with every worker busy (no deadlock)', { timeout: 60_000 }, async () => {
    const session = await start({ numCpus: 2 });
    const parent = remote(async (x: number) => {
      const { remote, get } = await import('shoal');
      const child = remote(async (y: number) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return y * 10;
      });
      return (await get(child(x))) + 1;
    });
    const refs = [0, 1, 2, 3].map((x) => parent(x));
    assert.deepEqual(await get(refs), [1, 11, 21, 31]);
    // Extra workers were started while parents waited; they are tracked for the cleanup check.
    assert.ok(workerPids(session).length >= 2);
  });

  test('no deadlock with distinct child functions per parent (numCpus: 2, 4 parents)', { timeout: 60_000 }, async () => {
    await start({ numCpus: 2 });
    // Each parent builds its own child function, so no worker is ever sent a child it submitted
    // itself (see the next test for that case).
    const parent = remote(async (x: number) => {
      const { remote, get } = await import('shoal');
      const child = remote(new Function('y', `return y * 10 + ${x} * 0;`) as (y: number) => number);
      return (await get(child(x))) + 1;
    });
    assert.deepEqual(await get([0, 1, 2, 3].map((x) => parent(x))), [1, 11, 21, 31]);
  });

  test('a child task can run on the worker whose task submitted it', async () => {
    await start({ numCpus: 1 });
    // The parent returns without awaiting its child: the child then runs on the only worker,
    // the one that submitted it.
    const parent = remote(async () => {
      const { remote } = await import('shoal');
      const child = remote((y: number) => y * 10);
      return { ref: child(4) };
    });
    const { ref } = await parent();
    assert.equal(await ref, 40);
  });

  test('a task taken back from a busy worker can later run on that worker', async () => {
    const session = await start({ numCpus: 2 });
    const nap = remote(async (ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms;
    });
    const waiter = remote(async (arg: { ref: ObjectRef<number> }) => {
      const { get } = await import('shoal');
      return (await get(arg.ref)) + 1;
    });
    const pid = remote(() => process.pid);
    const first = nap(100); // worker A
    const long = nap(1_000); // worker B
    const blocked = waiter({ ref: long }); // queued behind `first` on A; then blocks on `long`
    const queued = [pid(), pid()]; // one of them queued behind `blocked` on A, taken back when it blocks
    assert.deepEqual(await get([first, long, blocked]), [100, 1_000, 1_001]);
    for (const ran of await get(queued)) assert.ok(workerPids(session).includes(ran));
    // Every worker can now run `pid`, including A, which was sent it once but never ran it.
    const later = await get([pid(), pid(), pid(), pid()]);
    for (const ran of later) assert.ok(workerPids(session).includes(ran));
  });

  test('grandchildren: a tree of nested tasks two levels deep', { timeout: 60_000 }, async () => {
    await start({ numCpus: 2 });
    const level1 = remote(async (x: number) => {
      const { remote } = await import('shoal');
      const level2 = remote(async (y: number) => {
        const { remote } = await import('shoal');
        const leaf = remote((z: number) => z + 1);
        return (await leaf(y)) * 2;
      });
      const refs = [level2(x), level2(x + 1)];
      const values = await Promise.all(refs.map((ref) => ref.then((v) => v)));
      return values[0]! + values[1]!;
    });
    // (x+1)*2 + (x+2)*2
    assert.deepEqual(await get([level1(0), level1(10)]), [6, 46]);
  });

  test('a nested task can wait() on its children', async () => {
    await start({ numCpus: 2 });
    const parent = remote(async () => {
      const { remote, wait } = await import('shoal');
      const nap = remote(async (ms: number) => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return ms;
      });
      // The quick child first, so that it starts at once (see 'a task queued while every
      // worker is busy starts on the first worker that frees up' for the other order).
      const refs = [nap(0), nap(30_000)];
      const result = await wait(refs, { numReturns: 1, timeoutMs: 10_000 });
      const { cancel } = await import('shoal');
      cancel(refs[1]!);
      return { ready: result.ready.length, pending: result.pending.length, first: await result.ready[0] };
    });
    assert.deepEqual(await parent(), { ready: 1, pending: 1, first: 0 });
  });
});

describe('closure detection', () => {
  test('a captured variable is named in a TypeError at remote() time', () => {
    const k = 3;
    assert.throws(
      () => remote((a: number) => a * k),
      (error: unknown) => error instanceof TypeError && /`k`/.test(error.message),
    );
  });

  test('every captured variable is named', () => {
    const alpha = 1;
    let beta = 2;
    beta += 1;
    function gamma(): number {
      return 4;
    }
    assert.throws(
      () => remote((x: number) => x + alpha + beta + gamma()),
      (error: unknown) => {
        assert.ok(error instanceof TypeError);
        for (const name of ['alpha', 'beta', 'gamma']) assert.match(error.message, new RegExp(`\`${name}\``));
        return true;
      },
    );
  });

  test('an imported binding is captured too', () => {
    assert.throws(
      () => remote(() => platform()),
      (error: unknown) => error instanceof TypeError && /`platform`/.test(error.message),
    );
  });

  test('remote() of something other than a function is a TypeError', () => {
    assert.throws(() => remote(123 as never), TypeError);
    assert.throws(() => remote(null as never), TypeError);
  });

  test('globals, locals, parameters and shadowing are not captures', async () => {
    await start({ numCpus: 2 });
    const usesGlobals = remote((input: string, { scale = 2 }: { scale?: number } = {}, ...rest: number[]) => {
      const k = 10; // shadows nothing outside; local
      console.log.bind(console);
      return {
        max: Math.max(1, k) * scale,
        hex: Buffer.from(input).toString('hex'),
        pid: typeof process.pid,
        json: JSON.stringify({ a: [1] }),
        url: new URL('http://example.com/a/b').pathname,
        rest: rest.length,
        text: new TextEncoder().encode(input).length,
        undef: typeof undefined,
      };
    });
    assert.deepEqual(await usesGlobals('hi', { scale: 3 }, 1, 2), {
      max: 30,
      hex: '6869',
      pid: 'number',
      json: '{"a":[1]}',
      url: '/a/b',
      rest: 2,
      text: 2,
      undef: 'undefined',
    });
  });

  test('method shorthand, async methods, function declarations and async functions work', async () => {
    await start({ numCpus: 2 });
    const methods = {
      double(x: number) {
        return x * 2;
      },
      async triple(x: number) {
        await null;
        return x * 3;
      },
    };
    function square(x: number) {
      return x * x;
    }
    async function cube(x: number) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return x ** 3;
    }
    const double = remote(methods.double);
    const triple = remote(methods.triple);
    const squareRemote = remote(square);
    const cubeRemote = remote(cube);
    assert.equal(double.remoteName, 'double');
    assert.deepEqual(await get([double(4), triple(4), squareRemote(4), cubeRemote(4)]), [8, 12, 16, 64]);
  });

  test('classes and bound functions are rejected with a TypeError', () => {
    class Thing {}
    assert.throws(() => remote(Thing as never), TypeError);
    assert.throws(() => remote(((x: number) => x).bind(null)), TypeError);
  });
});

describe('functions compiled from TypeScript', () => {
  test('nested named functions and typed arrows (esbuild adds __name) run in the worker', async () => {
    await start({ numCpus: 2 });
    const compute = (values: number[]): { total: number; names: string[] } => {
      function helper(value: number): number {
        return value * 2;
      }
      const typed = (value: number): number => helper(value) + 1;
      const total = values.map(typed).reduce((a: number, b: number) => a + b, 0);
      return { total, names: [helper.name, typed.name] };
    };
    // This file runs through tsx with keepNames: the shipped source calls __name().
    assert.match(compute.toString(), /__name\(/);
    const remoteCompute = remote(compute);
    assert.deepEqual(await remoteCompute([1, 2, 3]), { total: 15, names: ['helper', 'typed'] });
  });

  test('typed generics, optional chaining, nullish coalescing, enums-as-objects and a local class', async () => {
    await start({ numCpus: 2 });
    const shapes = remote(<T extends { size?: number }>(items: T[]): number => {
      class Counter {
        count = 0;
        add(n: number): this {
          this.count += n;
          return this;
        }
      }
      const counter = new Counter();
      for (const item of items) counter.add(item?.size ?? 1);
      return counter.count;
    });
    assert.equal(await shapes([{ size: 3 }, {}, { size: 5 }]), 9);
  });
});
