// Actors with real processes: each actor lives in a worker process of its own, its calls run in
// order, and its lifetime, restarts and failures are those the README documents.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ActorDiedError, ActorNotFoundError, TaskCancelledError, TaskError, actor, cancel, get, getActor, kill, remote, store, type ActorDeathReason } from 'shoal';
import { LIVENESS_MS, actorPids, cleanUp, isAlive, markerDirectory, remember, sleep, start, until } from './runtime-helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/actor-child.ts', import.meta.url));

afterEach(cleanUp);

class Log {
  entries: number[] = [];
  constructor(readonly label: string) {}
  append(value: number): number {
    this.entries.push(value);
    return this.entries.length;
  }
  all(): number[] {
    return this.entries;
  }
  pid(): number {
    return process.pid;
  }
  fail(message: string): never {
    throw new RangeError(message);
  }
}

async function reasonOf(promise: PromiseLike<unknown>): Promise<ActorDeathReason> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ActorDiedError || (error as Error).name === 'ActorDiedError', `expected ActorDiedError, got ${String(error)}`);
    return (error as ActorDiedError).reason;
  }
  assert.fail('expected the call to fail');
}

/** Collects garbage here (as the store does itself when short of room). */
function collect(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

test('calls from one caller run in submission order, also while earlier ones wait for their arguments', async () => {
  const session = await start({ numCpus: 2 });
  const log = new (actor(Log))('order');
  const slow = remote(async (value: number) => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    return value;
  });
  // The first call waits for a task's result; those after it must not overtake it.
  log.append(slow(-1));
  const calls = Array.from({ length: 2000 }, (_, i) => log.append(i));
  assert.equal(await calls.at(-1), 2001);
  assert.deepEqual(await log.all(), [-1, ...Array.from({ length: 2000 }, (_, i) => i)]);
  // The instance lives in a process of its own, not a task worker.
  const pid = await log.pid();
  assert.notEqual(pid, process.pid);
  assert.deepEqual(actorPids(session), [pid]);
});

test('maxConcurrency lets async methods interleave; the default runs one call at a time', async () => {
  await start({ numCpus: 1 });
  class Gate {
    waiting = 0;
    active = 0;
    most = 0;
    opened: (() => void) | undefined;
    readonly open = new Promise<void>((resolve) => (this.opened = resolve));
    // Returns only once `n` calls are inside at once: it can finish only if they interleave.
    async meet(n: number): Promise<number> {
      this.waiting += 1;
      if (this.waiting === n) this.opened!();
      await this.open;
      return this.waiting;
    }
    async step(): Promise<number> {
      this.active += 1;
      this.most = Math.max(this.most, this.active);
      await new Promise((resolve) => setTimeout(resolve, 5));
      this.active -= 1;
      return this.most;
    }
  }
  const together = new (actor(Gate).options({ maxConcurrency: 3 }))();
  assert.deepEqual(await get([together.meet(3), together.meet(3), together.meet(3)]), [3, 3, 3]);
  const alone = new (actor(Gate))();
  const steps = await get(Array.from({ length: 6 }, () => alone.step()));
  assert.equal(Math.max(...steps), 1, 'with the default maxConcurrency, an async method never overlaps another');
});

test('a method that throws fails that call only; the actor and its state live on', async () => {
  await start({ numCpus: 1 });
  const log = new (actor(Log))('errors');
  await log.append(1);
  await assert.rejects(get(log.fail('bad input')), (error: unknown) => {
    assert.ok(error instanceof TaskError);
    assert.equal(error.remoteName, 'RangeError');
    assert.match(error.message, /Log\.fail failed: RangeError: bad input/);
    return true;
  });
  assert.equal(await log.append(2), 2);
});

test('a constructor that throws: every call fails with ActorDiedError saying why', async () => {
  await start({ numCpus: 1 });
  const Broken = actor(
    class Broken {
      constructor(why: string) {
        throw new TypeError(why);
      }
      call(): number {
        return 1;
      }
    },
  );
  const broken = new Broken('no config');
  const reason = await reasonOf(broken.call());
  assert.equal(reason.kind, 'constructor');
  assert.match((reason as { message: string }).message, /TypeError: no config/);
  assert.equal((await reasonOf(broken.call())).kind, 'constructor');
});

test('a handle travels: used inside a task, and stored inside an object', async () => {
  await start({ numCpus: 2 });
  const log = new (actor(Log))('travel');
  const viaTask = remote(async (handle: { append(value: number): PromiseLike<number> }, value: number) => handle.append(value));
  assert.equal(await viaTask(log, 7), 1);
  const boxed = store.put({ handle: log, note: 'stored' });
  const viaStore = remote(async (box: { handle: { append(value: number): PromiseLike<number> } }) => box.handle.append(8));
  assert.equal(await viaStore(boxed), 2);
  assert.deepEqual(await log.all(), [7, 8]);
});

test('kill(): calls fail with ActorDiedError (killed) and its process goes', async () => {
  await start({ numCpus: 1 });
  const log = new (actor(Log))('kill');
  const pid = await log.pid();
  remember(pid);
  kill(log);
  assert.equal((await reasonOf(log.append(1))).kind, 'killed');
  await until(() => !isAlive(pid), 'the killed actor process to exit');
  assert.throws(() => kill({} as never), /Expected `handle` to be an actor handle/);
});

test('SIGKILL of the process: restarted with its state reset, then dead after maxRestarts', async () => {
  await start({ numCpus: 1 });
  const log = new (actor(Log).options({ maxRestarts: 1 }))('restart');
  await log.append(1);
  await log.append(2);
  const first = await log.pid();
  remember(first);
  process.kill(first, 'SIGKILL');
  // The restarted instance ran its constructor again: the entries are gone.
  await until(async () => {
    try {
      return (await log.pid()) !== first;
    } catch (error) {
      // A call that reached the dying process fails (not final): the actor restarts.
      assert.equal((error as ActorDiedError).final, false);
      return false;
    }
  }, 'the actor to come back in a new process');
  assert.deepEqual(await log.all(), []);
  const second = await log.pid();
  remember(second);
  process.kill(second, 'SIGKILL');
  await until(async () => {
    try {
      await log.pid();
      return false;
    } catch (error) {
      return (error as ActorDiedError).final === true;
    }
  }, 'the actor to be dead for good');
  const reason = await reasonOf(log.append(3));
  assert.deepEqual(reason, { kind: 'exited', exitCode: null, signal: 'SIGKILL' });
});

test('maxTaskRetries runs a call lost to a dying process again on the restarted actor', async () => {
  await start({ numCpus: 1 });
  const directory = markerDirectory();
  class Once {
    // Dies the first time it is asked to (a marker file remembers), succeeds after the restart.
    crashOnce(marker: string): string {
      const fs = require('node:fs') as typeof import('node:fs');
      if (!fs.existsSync(marker)) {
        fs.writeFileSync(marker, 'crashed');
        process.kill(process.pid, 'SIGKILL');
      }
      return 'after restart';
    }
  }
  const once = new (actor(Once).options({ maxRestarts: 1, maxTaskRetries: 1 }))();
  assert.equal(await once.crashOnce(join(directory, 'crashed')), 'after restart');
});

test('named actors: found from another process attached to the node; ActorNotFoundError for a name nobody has', async () => {
  const session = await start({ numCpus: 1 });
  const log = new (actor(Log).options({ name: 'shared-log' }))('named');
  await log.append(1);
  const report = await runChild(session.address, ['use', 'shared-log']);
  assert.deepEqual(report, { appended: 2 });
  assert.deepEqual(await log.all(), [1, 41]);
  await assert.rejects(getActor('no-such-actor'), ActorNotFoundError);
  const again = await getActor<Log>('shared-log');
  assert.equal(await again.append(3), 3);
});

test("lifetime: an actor dies with the process that made it, unless 'detached'", async () => {
  const session = await start({ numCpus: 1 });
  const report = (await runChild(session.address, ['create'])) as { owned: number; detached: number };
  remember(report.owned);
  remember(report.detached);
  // The child has exited: its own actor is gone, the detached one lives on.
  await until(() => !isAlive(report.owned), "the child's owned actor to die with it");
  await assert.rejects(getActor('child-owned'), ActorNotFoundError);
  const detached = await getActor<Log>('child-detached');
  assert.equal(await detached.pid(), report.detached);
  assert.equal(await detached.append(5), 2, 'its state is the one the child left');
  kill(detached);
  await until(() => !isAlive(report.detached), 'the killed detached actor to exit');
});

test('an actor none of whose handles remain dies (handles are counted like refs)', async () => {
  const session = await start({ numCpus: 1 });
  let pid = 0;
  await (async () => {
    const log = new (actor(Log))('dropped');
    pid = await log.pid();
    remember(pid);
  })();
  // A named handle from elsewhere keeps it alive; here no handle remains once collected.
  await until(() => {
    collect();
    return !isAlive(pid);
  }, 'the actor to die once no handle to it remains');
  assert.deepEqual(session.actorPids(), []);
});

test('streaming task: items arrive while the generator runs; an error ends the stream after the items before it', async () => {
  await start({ numCpus: 2 });
  const directory = markerDirectory();
  const go = join(directory, 'go');
  const produce = remote(async function* (marker: string) {
    const fs = await import('node:fs');
    yield 'first';
    // Only once the consumer has the first item does the generator go on.
    while (!fs.existsSync(marker)) await new Promise((resolve) => setTimeout(resolve, 10));
    yield 'second';
    throw new RangeError('out of data');
  });
  const stream = produce(go);
  assert.deepEqual(await stream.next(), { done: false, value: 'first' });
  writeFileSync(go, '');
  assert.deepEqual(await stream.next(), { done: false, value: 'second' });
  await assert.rejects(stream.next(), (error: unknown) => {
    assert.ok(error instanceof TaskError || (error as Error).name === 'TaskError');
    assert.match((error as Error).message, /RangeError: out of data/);
    return true;
  });
  assert.deepEqual(await stream.next(), { done: true, value: undefined });
});

test('streaming: a slow consumer holds the producer back (at most streamWindow items ahead)', async () => {
  await start({ numCpus: 1 });
  const directory = markerDirectory();
  const progress = join(directory, 'progress');
  const produce = remote(
    async function* (file: string, count: number) {
      const fs = await import('node:fs');
      for (let i = 0; i < count; i++) {
        fs.writeFileSync(file, String(i + 1));
        yield new Float64Array(1000).fill(i);
      }
    },
    { streamWindow: 4 },
  );
  const stream = produce(progress, 100);
  let taken = 0;
  for await (const chunk of stream) {
    assert.equal(chunk[0], taken);
    taken += 1;
    if (taken === 3) {
      // The consumer sleeps: the producer may not run more than the window past what it took.
      await sleep(300);
      const made = Number(readNumber(progress));
      assert.ok(made <= taken + 4 + 1, `the producer made ${made} items while the consumer had taken ${taken} (window 4)`);
    }
  }
  assert.equal(taken, 100);
  assert.equal(await stream.completed, 100);
});

test('streaming: leaving the loop stops the producer (its finally runs); the worker lives on', async () => {
  const session = await start({ numCpus: 1 });
  const directory = markerDirectory();
  const stopped = join(directory, 'stopped');
  const produce = remote(async function* (file: string) {
    const fs = await import('node:fs');
    try {
      for (let i = 0; ; i++) yield i;
    } finally {
      fs.writeFileSync(file, 'stopped');
    }
  });
  const workers = session.workerPids();
  for await (const { ref, index } of produce(stopped).refs()) {
    assert.equal(await ref, index);
    if (index === 2) break;
  }
  await until(() => existsSync(stopped), "the generator's finally block to run");
  assert.deepEqual(session.workerPids(), workers, 'no worker was killed to stop it');
  assert.equal(await remote((x: number) => x + 1)(1), 2);
});

test('an actor method that is an async generator streams its items', async () => {
  await start({ numCpus: 1 });
  class Source {
    constructor(readonly base: number) {}
    async *count(n: number): AsyncGenerator<number> {
      for (let i = 0; i < n; i++) yield this.base + i;
    }
  }
  const source = new (actor(Source))(100);
  const seen: number[] = [];
  for await (const value of source.count(5)) seen.push(value);
  assert.deepEqual(seen, [100, 101, 102, 103, 104]);
});

test('bad input: a plain function, a captured variable, a `then` method, bad options, new forgotten', async () => {
  await start({ numCpus: 0 });
  assert.throws(() => actor((() => 1) as never), /expected a class/);
  const captured = 5;
  assert.throws(
    () =>
      actor(
        class Uses {
          get(): number {
            return captured;
          }
        },
      ),
    /the class uses `captured` from its enclosing scope/,
  );
  assert.throws(
    () =>
      actor(
        class Thenable {
          then(): void {}
        },
      ),
    /a method named `then` would make every handle awaitable/,
  );
  assert.throws(() => actor(Log, { maxConcurency: 2 } as never), /maxConcurrency/);
  assert.throws(() => actor(Log, { maxConcurrency: 0 }), /`maxConcurrency` to be an integer from 1/);
  assert.throws(() => actor(Log, { lifetime: 'forever' as never }), /`lifetime` to be 'detached' or 'owned'/);
  assert.throws(() => (actor(Log) as unknown as (label: string) => unknown)('x'), /must be called with `new`/);
  assert.throws(() => remote((x: number) => x, { streamWindow: 2 }), /not an async generator/);
  // A node without CPUs cannot place an actor.
  const reason = await reasonOf(new (actor(Log))('nowhere').append(1));
  assert.equal(reason.kind, 'infeasible');
});

// ---- helpers ---------------------------------------------------------------------------------

function readNumber(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '0';
}

/** Runs test/fixtures/actor-child.ts attached to `address` and returns what it reports. */
async function runChild(address: string, args: string[]): Promise<unknown> {
  const child = fork(CHILD, [...args, 'shoal-test-child'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, SHOAL_ADDRESS: address },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const report = await new Promise<unknown>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the attached process exited (${code}) before reporting`)));
  });
  assert.equal(await exited, 0);
  return report;
}

// ---- found by review: streams and actors that must never hang ---------------------------------

test('a stream closed before its producer starts: the producer never runs on, and the actor goes on', async () => {
  await start({ numCpus: 1 });
  class Busy {
    async slow(ms: number): Promise<number> {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms;
    }
    async *items(n: number): AsyncGenerator<number> {
      for (let i = 0; i < n; i++) yield i;
    }
    ping(): string {
      return 'pong';
    }
  }
  const busy = new (actor(Busy))();
  const slow = busy.slow(300);
  // Queued behind slow(): closed before it reaches the actor's process.
  const stream = busy.items(100);
  await stream.return();
  assert.equal(await slow, 300);
  assert.equal(await busy.ping(), 'pong');
  // A streaming task queued behind another task, closed before it starts.
  const block = remote(async (ms: number) => new Promise((resolve) => setTimeout(() => resolve(ms), ms)));
  const produce = remote(async function* () {
    for (let i = 0; ; i++) yield i;
  });
  const blocking = block(300);
  const queued = produce();
  await queued.return();
  assert.equal(await blocking, 300);
  // Stopped before its first item: cancelled while still in the node's queue, or ended at once
  // by the stop that reached its worker first.
  const outcome = await get(queued.completed).then(
    (count) => count,
    (error: Error) => error.name,
  );
  assert.ok(outcome === 0 || outcome === 'TaskCancelledError', `the stopped stream ended as ${String(outcome)}`);
  assert.equal(await remote(() => 'free')(), 'free', 'the worker is not held by the stopped stream');
});

test('pending calls keep their actor alive after the last handle is dropped', async () => {
  await start({ numCpus: 1 });
  class Slow {
    async work(ms: number): Promise<string> {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return 'done';
    }
  }
  const call = (() => new (actor(Slow))().work(400))();
  for (let i = 0; i < 5; i++) {
    collect();
    await sleep(20);
  }
  assert.equal(await call, 'done');
});

test('an actor waiting for resources that dies lets the next ones be placed', async () => {
  await start({ numCpus: 1, resources: { gpu: 1 } });
  const GpuLog = actor(Log, { resources: { gpu: 1 } });
  const first = new GpuLog('first');
  assert.equal(await first.append(1), 1);
  const second = new GpuLog('second');
  kill(second);
  assert.equal((await reasonOf(second.append(1))).kind, 'killed');
  const plain = new (actor(Log))('plain');
  assert.equal(await plain.append(2), 1, 'an actor needing nothing is placed though another waited before it');
  kill(first);
  const third = new GpuLog('third');
  assert.equal(await third.append(3), 1, 'the GPU given back is held by the next one');
});

test('on one CPU: a task reading a stream, and a producer paused for its consumer, lend their CPU', async () => {
  await start({ numCpus: 1 });
  const produce = remote(
    async function* (n: number) {
      for (let i = 0; i < n; i++) yield i;
    },
    { streamWindow: 2 },
  );
  const double = remote((x: number) => x * 2);
  // The driver consumes; each item goes to a task, which needs the CPU the paused producer holds.
  const doubled: number[] = [];
  for await (const { ref } of produce(10).refs()) doubled.push(await double(ref));
  assert.deepEqual(doubled, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
  // A task consumes a streaming task: it waits on the stream as on a get.
  const consume = remote(async (n: number) => {
    const shoal = await import('shoal');
    const inner = shoal.remote(async function* (count: number) {
      for (let i = 0; i < count; i++) yield i;
    });
    let total = 0;
    for await (const value of inner(n)) total += value;
    return total;
  });
  assert.equal(await consume(20), 190);
});

test('an actor may call itself while its own stream is paused for the consumer (maxConcurrency 1)', async () => {
  await start({ numCpus: 1 });
  class Table {
    async *rows(n: number): AsyncGenerator<number> {
      for (let i = 0; i < n; i++) yield i;
    }
    double(x: number): number {
      return 2 * x;
    }
  }
  const table = new (actor(Table).options({ streamWindow: 2 }))();
  const seen: number[] = [];
  for await (const row of table.rows(10)) seen.push(await table.double(row));
  assert.deepEqual(seen, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
});

test('a stream from a dead actor ends with ActorDiedError, not quietly', async () => {
  await start({ numCpus: 1 });
  class Source {
    async *items(n: number): AsyncGenerator<number> {
      for (let i = 0; i < n; i++) yield i;
    }
  }
  const source = new (actor(Source))();
  kill(source);
  await assert.rejects(
    (async () => {
      for await (const value of source.items(3)) void value;
    })(),
    (error: unknown) => (error as Error).name === 'ActorDiedError',
  );
});

test('a class written as `const Name = actor(class Name { ... })` (tsx renames it) ships', async () => {
  await start({ numCpus: 1 });
  const Counter = actor(
    class Counter {
      n = 0;
      add(k: number): number {
        return (this.n += k);
      }
      twice(k: number): number {
        return new Counter().add(k) * 2;
      }
    },
  );
  const counter = new Counter();
  assert.equal(await counter.add(2), 2);
  assert.equal(await counter.twice(3), 6);
});

// ---- found by the second review -----------------------------------------------------------------

test('an actor that dies as it is placed does not disturb the placing of those after it', async () => {
  const session = await start({ numCpus: 1, resources: { gpu: 1 } });
  const GpuLog = actor(Log, { resources: { gpu: 1 } });
  const first = new GpuLog('first');
  await first.append(1);
  const failing = remote((): string => {
    throw new RangeError('no label');
  });
  // Waits for the GPU; once placed, its constructor's argument is a failure: it dies at once.
  const broken = new GpuLog(failing());
  const next = new GpuLog('next');
  kill(first);
  assert.equal((await reasonOf(broken.append(1))).kind, 'constructor');
  assert.equal(await next.append(7), 1);
  assert.equal(actorPids(session).length, 1, 'only the live actor has a process');
  kill(next);
  const last = new GpuLog('last');
  assert.equal(await last.append(8), 1, 'the GPU was held once, and given back once');
});

test('streams read one after another do not need a worker each past maxWorkers', async () => {
  await start({ numCpus: 1, maxWorkers: 1, maxBlockedWorkers: 3 });
  const produce = remote(
    async function* (n: number) {
      for (let i = 0; i < n; i++) yield i;
    },
    { streamWindow: 2 },
  );
  const streams = Array.from({ length: 5 }, () => produce(10));
  const totals: number[] = [];
  for (const stream of streams) {
    let total = 0;
    for await (const value of stream) total += value;
    totals.push(total);
  }
  assert.deepEqual(totals, [45, 45, 45, 45, 45]);
});

test('two streams of one actor read in turns each get every item (room is charged to the right stream)', async () => {
  await start({ numCpus: 1 });
  class Chunks {
    async *chunks(n: number, fill: number): AsyncGenerator<Float64Array> {
      for (let i = 0; i < n; i++) yield new Float64Array(131_072).fill(fill + i);
    }
  }
  const source = new (actor(Chunks).options({ maxConcurrency: 2, streamWindow: 2 }))();
  const a = source.chunks(6, 0);
  const b = source.chunks(6, 100);
  const seen: number[] = [];
  for (let i = 0; i < 6; i++) {
    seen.push((await a.next()).value![0]!, (await b.next()).value![0]!);
  }
  assert.deepEqual(seen, [0, 100, 1, 101, 2, 102, 3, 103, 4, 104, 5, 105]);
});

test('a paused streaming method goes on only once the slot is free again (maxConcurrency 1)', async () => {
  await start({ numCpus: 1 });
  class Meter {
    active = 0;
    most = 0;
    enter(): void {
      this.active += 1;
      this.most = Math.max(this.most, this.active);
    }
    async *items(n: number): AsyncGenerator<number> {
      for (let i = 0; i < n; i++) {
        this.enter();
        await new Promise((resolve) => setTimeout(resolve, 2));
        this.active -= 1;
        yield i;
      }
    }
    async slow(): Promise<number> {
      this.enter();
      await new Promise((resolve) => setTimeout(resolve, 50));
      this.active -= 1;
      return this.most;
    }
  }
  const meter = new (actor(Meter).options({ streamWindow: 1 }))();
  const stream = meter.items(6);
  assert.equal((await stream.next()).value, 0);
  // The generator is paused for credit: slow() takes the slot, and the generator must wait for it.
  const slow = meter.slow();
  const rest: number[] = [];
  for await (const value of stream) rest.push(value);
  assert.deepEqual(rest, [1, 2, 3, 4, 5]);
  assert.equal(await slow, 1, 'never two calls inside the actor at once');
});

test('a sync method whose result throws as it is looked at fails that call only', async () => {
  await start({ numCpus: 1 });
  class Tricky {
    tricky(): object {
      return new Proxy(
        {},
        {
          get(_target, key) {
            if (key === 'then') throw new RangeError('no then here');
            return undefined;
          },
        },
      );
    }
    ping(): string {
      return 'pong';
    }
  }
  const tricky = new (actor(Tricky))();
  await assert.rejects(get(tricky.tricky()), /no then here/);
  assert.equal(await tricky.ping(), 'pong');
});

test('a program that read part of a stream and is done exits by itself (a paused producer keeps nothing alive)', async () => {
  const child = fork(fileURLToPath(new URL('./fixtures/stream-exit.ts', import.meta.url)), ['shoal-test-child'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const report = await new Promise<unknown>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the program exited (${code}) before reporting`)));
  });
  assert.deepEqual(report, { first: 0, tick: 0 });
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(() => resolve('still running'), LIVENESS_MS)))]);
  clearTimeout(timer);
  if (code === 'still running') child.kill('SIGKILL');
  assert.equal(code, 0, 'the program exits by itself');
});

test('an AbortSignal or cancel() drops a queued actor call (TaskCancelledError); the call running goes on, and the actor keeps its state', async () => {
  await start({ numCpus: 2 });
  const directory = markerDirectory();
  const Gate = actor(
    class Gate {
      calls: string[] = [];
      async hold(dir: string): Promise<string[]> {
        const { existsSync: exists, writeFileSync: write } = await import('node:fs');
        write(`${dir}/running`, '');
        while (!exists(`${dir}/open`)) await new Promise((resolve) => setTimeout(resolve, 10));
        this.calls.push('hold');
        return this.calls;
      }
      note(what: string): string[] {
        this.calls.push(what);
        return this.calls;
      }
    },
  );
  const gate = new Gate();
  const held = gate.hold(directory);
  await until(() => existsSync(join(directory, 'running')), 'the first call to run');
  const controller = new AbortController();
  const aborted = gate.note.options({ signal: controller.signal })('aborted');
  const cancelled = gate.note('cancelled');
  const kept = gate.note('kept');
  controller.abort();
  cancel(cancelled);
  // A signal aborted already cancels the call it is given at once.
  const early = gate.note.options({ signal: AbortSignal.abort() })('early');
  // They fail while the first call still holds the actor (opening it first would race the recall).
  for (const call of [aborted, cancelled, early]) {
    await assert.rejects(get(call), (error: unknown) => error instanceof TaskCancelledError && error.code === 'ERR_TASK_CANCELLED' && /Gate\.note/.test(error.message));
  }
  writeFileSync(join(directory, 'open'), '');
  assert.deepEqual(await held, ['hold']);
  assert.deepEqual(await kept, ['hold', 'kept'], 'the cancelled calls never ran');
  // Aborting after the call finished changes nothing.
  const later = new AbortController();
  const done = gate.note.options({ signal: later.signal })('done');
  assert.deepEqual(await done, ['hold', 'kept', 'done']);
  later.abort();
  assert.deepEqual(await gate.note('last'), ['hold', 'kept', 'done', 'last']);
  // From a task (through the node's connection), the same: a call queued behind a running one.
  const second = markerDirectory();
  const heldAgain = gate.hold(second);
  await until(() => existsSync(join(second, 'running')), 'the second held call to run');
  const fromTask = remote(async (handle: typeof gate) => {
    const { TaskCancelledError: Cancelled } = await import('shoal');
    try {
      await handle.note.options({ signal: AbortSignal.abort() })('in a task');
      return 'ran';
    } catch (error) {
      return error instanceof Cancelled ? 'cancelled' : String(error);
    }
  });
  assert.equal(await fromTask(gate), 'cancelled');
  writeFileSync(join(second, 'open'), '');
  assert.deepEqual(await heldAgain, ['hold', 'kept', 'done', 'last', 'hold']);
  assert.throws(() => gate.note.options({ numCpus: 1 } as never), (error: unknown) => error instanceof TypeError && (error as { code?: string }).code === 'ERR_UNKNOWN_OPTION' && /Unknown actor call option `numCpus`/.test(error.message));
  assert.throws(() => gate.note.options({ signal: 'soon' } as never), /Expected `signal` to be an AbortSignal/);
});
