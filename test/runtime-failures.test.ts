// Integration tests of how tasks fail, with real worker processes: thrown errors, dependents of
// failed tasks, worker crashes and kills with retries, retryExceptions, timeouts, cancellation,
// infeasible demands and option validation.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { readdirSync } from 'node:fs';
import { afterEach, describe, test } from 'node:test';
import {
  InfeasibleTaskError,
  ObjectRef,
  TaskCancelledError,
  TaskError,
  TaskTimeoutError,
  WorkerCrashedError,
  cancel,
  get,
  init,
  remote,
  shutdown,
  store,
  wait,
} from 'shoal';
import {
  cleanUp,
  isAlive,
  markerDirectory,
  nextFile,
  ownSessionDirectories,
  remember,
  start,
  until,
  workerPids,
} from './runtime-helpers.js';

afterEach(cleanUp);

/** The rejection of `promise` (fails the test if it resolves). */
async function rejection(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

/**
 * Records its attempt as a file `attempt-<pid>` in `directory`, then hangs (so that the test can
 * kill it, cancel it or let it time out).
 */
const hang = remote(async (directory: string) => {
  const { renameSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  // Written then renamed, so that the test never reads a half-written file.
  writeFileSync(join(directory, `.tmp-${process.pid}`), String(process.pid));
  renameSync(join(directory, `.tmp-${process.pid}`), join(directory, `attempt-${process.pid}`));
  await new Promise((resolve) => setTimeout(resolve, 60_000));
  return 'finished';
});

const identity = remote((value: unknown) => value);

/** The line of this function's caller in this file. */
function callerLine(): number {
  return Number(/:(\d+):\d+\)?$/.exec(new Error().stack!.split('\n')[2]!)![1]);
}

function pidOf(file: string): number {
  return Number(file.slice(file.indexOf('-') + 1));
}

function attempts(directory: string): string[] {
  return readdirSync(directory).filter((name) => name.startsWith('attempt-'));
}

describe('errors thrown by tasks', () => {
  test('a thrown error becomes a TaskError carrying the rebuilt error as cause', async () => {
    await start({ numCpus: 2 });
    const remoteLine = callerLine() + 1;
    const boom = remote(function boom(message: string) {
      throw Object.assign(new RangeError(message), { code: 'E_BOOM', detail: { at: 7 } });
    });
    const ref = boom('index 7 is out of range');
    const error = await rejection(get(ref));
    assert.ok(error instanceof TaskError, `got ${String(error)}`);
    assert.equal(error.code, 'ERR_TASK_FAILED');
    assert.equal(error.remoteName, 'RangeError');
    assert.equal(error.taskName, 'boom');
    assert.match(error.message, /index 7 is out of range/);
    assert.match(error.remoteStack ?? '', /RangeError: index 7 is out of range/);
    const cause = error.cause as Error & { code?: string; detail?: unknown };
    assert.ok(cause instanceof Error);
    assert.equal(cause.name, 'RangeError');
    assert.equal(cause.message, 'index 7 is out of range');
    assert.equal(cause.code, 'E_BOOM');
    assert.deepEqual(cause.detail, { at: 7 });
    // Its stack points home: this file, at the line of the throw (the one after the remote()
    // call; under tsx its source map may move it by a line).
    const frame = new RegExp(`at boom\\d* \\(.*runtime-failures\\.test\\.ts:(\\d+):\\d+\\)`).exec(cause.stack ?? '');
    assert.ok(frame && [remoteLine, remoteLine + 1].includes(Number(frame[1])), `the task's frame names this file near line ${remoteLine + 1}: ${cause.stack}`);
    // `await ref` rejects the same way.
    const again = await rejection(ref);
    assert.ok(again instanceof TaskError);
    assert.equal(again.message, error.message);
  });

  test('async rejections, non-Error throws and errors with a cause', async () => {
    await start({ numCpus: 2 });
    const rejects = remote(async () => {
      await null;
      throw new TypeError('async nope', { cause: new Error('root cause') });
    });
    const throwsString = remote(() => {
      throw 'just a string';
    });
    const asyncError = await rejection(rejects());
    assert.ok(asyncError instanceof TaskError);
    assert.equal(asyncError.remoteName, 'TypeError');
    const cause = asyncError.cause as Error;
    assert.equal(cause.message, 'async nope');
    assert.equal((cause.cause as Error).message, 'root cause');

    const stringError = await rejection(throwsString());
    assert.ok(stringError instanceof TaskError);
    assert.match(stringError.message, /just a string/);
    assert.equal(stringError.cause, 'just a string');
  });

  test('a result that cannot be stored fails the task with a TaskError naming it', async () => {
    await start({ numCpus: 2 });
    const returnsFunction = remote(() => ({ ok: 1, bad: () => 2 }));
    const error = await rejection(returnsFunction());
    assert.ok(error instanceof TaskError);
    assert.equal(error.remoteName, 'TypeError');
    assert.match(error.message, /result\.bad/);
    // The worker survives: the next task runs.
    assert.equal(await identity(5), 5);
  });

  test('an argument that cannot be stored is a TypeError at call time naming its path', async () => {
    await start({ numCpus: 2 });
    assert.throws(
      () => identity({ list: [1, { callback: () => 1 }] }),
      (error: unknown) => error instanceof TypeError && /args\[0\]\.list\[1\]\.callback/.test(error.message),
    );
  });

  test('a task taking a failed ref fails with the same error, down a chain', async () => {
    await start({ numCpus: 2 });
    const boom = remote(function boom() {
      throw new SyntaxError('bad input');
    });
    const failed = boom();
    const dependent = identity(failed);
    const dependentOfDependent = identity(dependent);
    const original = await rejection(failed);
    assert.ok(original instanceof TaskError);
    for (const ref of [dependent, dependentOfDependent]) {
      const error = await rejection(ref);
      assert.ok(error instanceof TaskError, `got ${String(error)}`);
      assert.equal(error.taskName, 'boom', 'the error is the failed task, not the dependent');
      assert.equal(error.remoteName, 'SyntaxError');
      assert.equal(error.message, original.message);
      assert.equal((error.cause as Error).message, 'bad input');
      assert.equal(error, original, 'the very same error object');
    }
  });

  test('a task getting a failed ref nested in its argument sees the TaskError', async () => {
    await start({ numCpus: 2 });
    const boom = remote(function boom() {
      throw new Error('nested failure');
    });
    const failed = boom();
    await rejection(failed);
    const open = remote(async (arg: { ref: ObjectRef<never> }) => {
      const { get } = await import('shoal');
      try {
        await get(arg.ref);
        return 'no error';
      } catch (error) {
        return `${(error as Error).name}: ${(error as Error).message}`;
      }
    });
    assert.match(await open({ ref: failed }), /TaskError: .*nested failure/);
  });
});

describe('worker crashes and retries', () => {
  test('process.exit(3) with maxRetries: 0 is a WorkerCrashedError with exitCode 3; a replacement starts', async () => {
    const session = await start({ numCpus: 1 });
    const [original] = workerPids(session);
    const exits = remote(
      () => {
        process.exit(3);
      },
      { maxRetries: 0 },
    );
    const error = await rejection(exits());
    assert.ok(error instanceof WorkerCrashedError, `got ${String(error)}`);
    assert.equal(error.code, 'ERR_WORKER_CRASHED');
    assert.equal(error.exitCode, 3);
    assert.equal(error.signal, null);
    assert.match(error.message, /exit code 3/);
    await until(() => !isAlive(original!), 'the crashed worker to be gone');
    await until(() => workerPids(session).length === 1 && !workerPids(session).includes(original!), 'a replacement worker');
    assert.equal(await identity('still works'), 'still works');
  });

  test('a crashing task is retried maxRetries times (default 3), then fails', async () => {
    await start({ numCpus: 1 });
    const directory = markerDirectory();
    const exitsAfterRecording = remote(async (dir: string) => {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(`${dir}/attempt-${process.pid}`, '');
      process.exit(7);
    });
    const withDefault = await rejection(exitsAfterRecording(directory));
    assert.ok(withDefault instanceof WorkerCrashedError);
    assert.equal(withDefault.exitCode, 7);
    assert.equal(attempts(directory).length, 4, '1 attempt + 3 retries');
    assert.match(withDefault.message, /4 attempts/);
    for (const file of attempts(directory)) remember(pidOf(file));
  });

  test('kill -9 of a worker mid-task: the task is retried and succeeds; a replacement worker appears', async () => {
    const session = await start({ numCpus: 2 });
    const before = workerPids(session);
    const directory = markerDirectory();
    const idempotent = remote(async (dir: string) => {
      const { existsSync, renameSync, writeFileSync } = await import('node:fs');
      const marker = `${dir}/started`;
      if (existsSync(marker)) return { attempt: 2, pid: process.pid };
      writeFileSync(marker, '');
      writeFileSync(`${dir}/.tmp`, '');
      renameSync(`${dir}/.tmp`, `${dir}/attempt-${process.pid}`);
      await new Promise((resolve) => setTimeout(resolve, 60_000));
      return { attempt: 1, pid: process.pid };
    });
    const ref = idempotent(directory);
    const victim = pidOf(await nextFile(directory, 'attempt-'));
    assert.ok(before.includes(victim), 'the task runs in one of the workers');
    process.kill(victim, 'SIGKILL');
    const result = await ref;
    assert.equal(result.attempt, 2);
    assert.notEqual(result.pid, victim);
    await until(() => !isAlive(victim), 'the killed worker to be gone');
    await until(() => workerPids(session).length === 2 && !workerPids(session).includes(victim), 'a replacement worker');
    const replacements = workerPids(session).filter((pid) => !before.includes(pid));
    assert.equal(replacements.length, 1, 'exactly one new worker replaced the killed one');
  });

  test('retries exhausted by kills: WorkerCrashedError with signal SIGKILL', async () => {
    await start({ numCpus: 2 });
    const directory = markerDirectory();
    const ref = hang.options({ maxRetries: 1 })(directory);
    const killed = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const file = await nextFile(directory, 'attempt-', killed);
      killed.add(file);
      remember(pidOf(file));
      process.kill(pidOf(file), 'SIGKILL');
    }
    const error = await rejection(ref);
    assert.ok(error instanceof WorkerCrashedError, `got ${String(error)}`);
    assert.equal(error.signal, 'SIGKILL');
    assert.equal(error.exitCode, null);
    assert.equal(error.taskName, 'anonymous');
    assert.match(error.message, /SIGKILL/);
    assert.match(error.message, /2 attempts/);
    assert.equal(attempts(directory).length, 2, 'no attempt after the retries ran out');
  });

  test("retryExceptions: ['RangeError'] retries a task that threw RangeError once; it then succeeds", async () => {
    await start({ numCpus: 2 });
    const directory = markerDirectory();
    const flaky = remote(
      async (dir: string, errorName: string) => {
        const { existsSync, writeFileSync } = await import('node:fs');
        const marker = `${dir}/${errorName}-thrown`;
        if (existsSync(marker)) return 'second attempt';
        writeFileSync(marker, '');
        const ErrorClass = errorName === 'RangeError' ? RangeError : TypeError;
        throw new ErrorClass('first attempt fails');
      },
      { retryExceptions: ['RangeError'] },
    );
    assert.equal(await flaky(directory, 'RangeError'), 'second attempt');
    // An error not in the list is not retried.
    const notListed = await rejection(flaky(directory, 'TypeError'));
    assert.ok(notListed instanceof TaskError);
    assert.equal(notListed.remoteName, 'TypeError');
  });

  test('retryExceptions: true retries any error within maxRetries; by default errors are not retried', async () => {
    await start({ numCpus: 2 });
    const directory = markerDirectory();
    const countAndThrow = remote(async (dir: string, label: string) => {
      const { readdirSync, writeFileSync } = await import('node:fs');
      const tries = readdirSync(dir).filter((name) => name.startsWith(label)).length;
      writeFileSync(`${dir}/${label}-${tries}`, '');
      throw new Error(`${label} try ${tries}`);
    });
    const count = (label: string) => readdirSync(directory).filter((name) => name.startsWith(label)).length;

    const always = await rejection(countAndThrow.options({ retryExceptions: true, maxRetries: 2 })(directory, 'always'));
    assert.ok(always instanceof TaskError);
    assert.equal(count('always'), 3, '1 attempt + 2 retries');
    assert.match(always.message, /always try 2/, 'the error is the last attempt’s');

    await rejection(countAndThrow(directory, 'default'));
    assert.equal(count('default'), 1);

    await rejection(countAndThrow.options({ retryExceptions: true, maxRetries: 0 })(directory, 'none'));
    assert.equal(count('none'), 1);
  });
});

describe('timeouts and cancellation', () => {
  test('timeoutMs: TaskTimeoutError, no retry, and the worker is replaced', async () => {
    const session = await start({ numCpus: 1 });
    const [original] = workerPids(session);
    const directory = markerDirectory();
    const error = await rejection(hang.options({ timeoutMs: 300 })(directory));
    assert.ok(error instanceof TaskTimeoutError, `got ${String(error)}`);
    assert.equal(error.code, 'ERR_TASK_TIMEOUT');
    assert.equal(error.timeoutMs, 300);
    assert.equal(attempts(directory).length, 1, 'a timed-out task is not retried');
    assert.equal(pidOf(attempts(directory)[0]!), original);
    await until(() => !isAlive(original!), 'the timed-out worker to be killed');
    await until(() => workerPids(session).length === 1 && !workerPids(session).includes(original!), 'a replacement worker');
    // A task finishing within its timeout is unaffected.
    assert.equal(await identity.options({ timeoutMs: 10_000 })('in time'), 'in time');
  });

  test('cancel: a queued task, a queued task of another shape, a dependent, and then the running task', async () => {
    const session = await start({ numCpus: 1 });
    const [original] = workerPids(session);
    const directory = markerDirectory();
    const running = hang(directory);
    await nextFile(directory, 'attempt-');
    const queued = identity('queued'); // same demand: may be queued on the busy worker itself
    const queuedHalf = identity.options({ numCpus: 0.5 })('queued half'); // waits in the node's queue
    const dependent = identity(queued);
    cancel(queued);
    cancel(queuedHalf);
    for (const ref of [queued, queuedHalf, dependent]) {
      const error = await rejection(ref);
      assert.ok(error instanceof TaskCancelledError, `got ${String(error)}`);
      assert.equal(error.code, 'ERR_TASK_CANCELLED');
    }
    // Cancelling queued tasks leaves the running one and its worker alone.
    assert.ok(isAlive(original!));
    assert.deepEqual(workerPids(session), [original]);
    assert.deepEqual((await wait([running], { timeoutMs: 0 })).pending, [running]);

    cancel(running);
    const error = await rejection(running);
    assert.ok(error instanceof TaskCancelledError, `got ${String(error)}`);
    await until(() => !isAlive(original!), 'the cancelled task’s worker to be killed');
    await until(() => workerPids(session).length === 1, 'a replacement worker');
    assert.equal(attempts(directory).length, 1, 'a cancelled task is not retried');

    const done = identity('done');
    assert.equal(await done, 'done');
    cancel(done); // finished: no effect
    assert.equal(await done, 'done');
  });

  test('an AbortSignal cancels its tasks: queued and running ones, and at submission when aborted already; the listener goes with the task', async () => {
    const session = await start({ numCpus: 1 });
    const [original] = workerPids(session);
    const directory = markerDirectory();
    const controller = new AbortController();
    const running = hang.options({ signal: controller.signal })(directory);
    await nextFile(directory, 'attempt-');
    const queued = identity.options({ signal: controller.signal })('queued');
    assert.equal(getEventListeners(controller.signal, 'abort').length, 2, 'one listener per pending task');
    controller.abort();
    for (const ref of [queued, running]) assert.ok((await rejection(ref)) instanceof TaskCancelledError);
    await until(() => !isAlive(original!), 'the running task’s worker to be killed');
    // Aborted already: cancelled as it is submitted.
    assert.ok((await rejection(identity.options({ signal: AbortSignal.abort() })('late'))) instanceof TaskCancelledError);
    // A task that finishes lets go of the signal; aborting afterwards changes nothing.
    const later = new AbortController();
    const done = identity.options({ signal: later.signal })('done');
    assert.equal(await done, 'done');
    await until(() => getEventListeners(later.signal, 'abort').length === 0, 'the finished task to let go of the signal');
    later.abort();
    assert.equal(await done, 'done');
    assert.throws(() => identity.options({ signal: 'soon' as never }), /`signal` to be an AbortSignal/);
  });

  test('cancel of a task that waits for its argument', async () => {
    await start({ numCpus: 2 });
    const directory = markerDirectory();
    const running = hang(directory);
    const waiting = identity(running); // not ready until `running` finishes
    cancel(waiting);
    assert.ok((await rejection(waiting)) instanceof TaskCancelledError);
    cancel(running);
    assert.ok((await rejection(running)) instanceof TaskCancelledError);
  });
});

describe('infeasible demands and bad options', () => {
  test('a resource the node does not have is an InfeasibleTaskError', async () => {
    await start({ numCpus: 2 });
    const needsGpu = remote(() => 'ran on a gpu', { resources: { gpu: 1 } });
    const error = await rejection(needsGpu());
    assert.ok(error instanceof InfeasibleTaskError, `got ${String(error)}`);
    assert.equal(error.code, 'ERR_TASK_INFEASIBLE');
    assert.match(error.message, /gpu/);
    const tooManyCpus = await rejection(identity.options({ numCpus: 3 })(1));
    assert.ok(tooManyCpus instanceof InfeasibleTaskError);
    // A dependent of an infeasible task fails with it.
    assert.ok((await rejection(identity(needsGpu()))) instanceof InfeasibleTaskError);
    // The node is fine.
    assert.equal(await identity(1), 1);
  });

  test('a node offering the resource runs the task', async () => {
    await start({ numCpus: 1, resources: { gpu: 1 } });
    const needsGpu = remote(() => 'ran on a gpu', { resources: { gpu: 1 } });
    assert.deepEqual(await get([needsGpu(), needsGpu()]), ['ran on a gpu', 'ran on a gpu']);
  });

  test('bad remote options are TypeErrors naming the option', () => {
    const fn = (x: number) => x;
    const cases: [object, RegExp][] = [
      [{ numCpu: 1 }, /`numCpu`/],
      [{ numCpus: -1 }, /`numCpus`.*-1/],
      [{ numCpus: Number.NaN }, /`numCpus`/],
      [{ numCpus: '1' }, /`numCpus`/],
      [{ maxRetries: 1.5 }, /`maxRetries`.*1\.5/],
      [{ maxRetries: -1 }, /`maxRetries`/],
      [{ timeoutMs: 0 }, /`timeoutMs`/],
      [{ timeoutMs: -5 }, /`timeoutMs`/],
      [{ retryExceptions: 'RangeError' }, /`retryExceptions`/],
      [{ retryExceptions: [1] }, /`retryExceptions`/],
      [{ resources: { gpu: -1 } }, /`resources\.gpu`/],
      [{ resources: [1] }, /`resources`/],
      [{ resources: { CPU: 1 } }, /numCpus/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => remote(fn, options as never),
        (error: unknown) => error instanceof TypeError && message.test(error.message),
        `remote(fn, ${JSON.stringify(options)})`,
      );
    }
    const good = remote(fn, { numCpus: 0.5, maxRetries: 0, retryExceptions: ['RangeError'], timeoutMs: 1000, resources: {} });
    assert.throws(() => good.options({ numCpus: -1 }), /`numCpus`/);
  });

  test('bad init options reject with a TypeError naming the option, and start nothing', async () => {
    assert.deepEqual(ownSessionDirectories(), []);
    const cases: [object, RegExp][] = [
      [{ numCpus: -1 }, /`numCpus`/],
      [{ numCpus: Number.POSITIVE_INFINITY }, /`numCpus`/],
      [{ maxWorkers: 1.5 }, /`maxWorkers`/],
      [{ numCpus: 2, maxWorkers: 1 }, /`maxWorkers`/],
      [{ resources: { gpu: 'many' } }, /`resources\.gpu`/],
      [{ numCPUs: 2 }, /numCPUs/],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(
        init(options as never),
        (error: unknown) => error instanceof TypeError && message.test(error.message),
        `init(${JSON.stringify(options)})`,
      );
    }
    assert.deepEqual(ownSessionDirectories(), [], 'no session directory was created');
    // A good init still works afterwards.
    await start({ numCpus: 1 });
  });

  test('bad arguments to get, wait and cancel are TypeErrors', async () => {
    await start({ numCpus: 1 });
    const ref = store.put(1);
    await assert.rejects(get('nope' as never), TypeError);
    await assert.rejects(get([ref, 3] as never), /refs\[1\]/);
    assert.throws(() => wait('nope' as never), TypeError);
    assert.throws(() => wait([ref], { numReturns: 2 }), /numReturns/);
    assert.throws(() => wait([ref], { timeoutMs: -1 }), /timeoutMs/);
    await assert.rejects(get(ref, { timeoutMs: Number.NaN }), /timeoutMs/);
    await assert.rejects(get(ref, { signal: {} as never }), /signal.*AbortSignal/);
    assert.throws(() => wait([ref], { signal: 'soon' as never }), /signal/);
    assert.throws(() => cancel({ id: 'x' } as never), TypeError);
    await shutdown();
  });
});
