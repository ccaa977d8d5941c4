import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NodeToWorker, ObjectPayload } from '@shoal/protocol';
import { resolveRemoteOptions } from '../options.js';
import { LocalScheduler, type SchedulerHost, type SpillTarget } from './local-scheduler.js';
import { DEEP_BACKLOG, DEEP_PIPELINE_DEPTH, PIPELINE_DEPTH } from './policies/pipeline.js';
import type { WorkerSlot, WorkerState } from './worker-slot.js';

/** The scheduler driven without processes: objects in a map, workers that record what they are sent. */
class FakeObjects {
  readonly states = new Map<string, { state: 'pending' | 'ready' | 'failed'; error?: Error; waiters: (() => void)[]; count: number }>();
  status(id: string) {
    const entry = this.states.get(id);
    if (!entry) return { state: 'freed' as const };
    return entry.state === 'failed' ? { state: 'failed' as const, error: entry.error! } : { state: entry.state };
  }
  isPending(id: string) {
    return this.states.get(id)?.state === 'pending';
  }
  expect(id: string) {
    this.states.set(id, { state: 'pending', waiters: [], count: 0 });
  }
  ready(id: string) {
    const entry = this.states.get(id) ?? { state: 'pending', waiters: [], count: 0 };
    entry.state = 'ready';
    this.states.set(id, entry);
    for (const waiter of entry.waiters.splice(0)) waiter();
  }
  hold(id: string) {
    const entry = this.states.get(id);
    if (entry) entry.count += 1;
    return entry !== undefined;
  }
  release(id: string) {
    const entry = this.states.get(id);
    if (entry) entry.count -= 1;
  }
  onSettled(id: string, callback: () => void) {
    const entry = this.states.get(id);
    if (entry?.state === 'pending') entry.waiters.push(callback);
    else callback();
  }
  fail(id: string, error: Error) {
    const entry = this.states.get(id) ?? { state: 'pending', waiters: [], count: 0 };
    Object.assign(entry, { state: 'failed', error });
    this.states.set(id, entry);
    for (const waiter of entry.waiters.splice(0)) waiter();
  }
  register(id: string, _payload: ObjectPayload) {
    this.ready(id);
  }
}

class FakeWorker implements WorkerSlot {
  readonly envKey = '';
  state: WorkerState = 'idle';
  readonly inflight: WorkerSlot['inflight'] = [];
  lease: WorkerSlot['lease'];
  blockedRequests = 0;
  pausedStreams = 0;
  readonly functions = new Set<string>();
  readonly sent: NodeToWorker[] = [];
  killed = false;
  constructor(readonly pid: number) {}
  send(message: NodeToWorker) {
    this.sent.push(message);
  }
  kill() {
    this.killed = true;
  }
  executed(): string[] {
    return this.sent.flatMap((message) => (message.type === 'execute' ? [message.returnId] : []));
  }
}

function setup(options: { cpus?: number; workers?: number; cluster?: SpillTarget; maxWorkers?: number; maxBlockedWorkers?: number } = {}) {
  const objects = new FakeObjects();
  const workers = Array.from({ length: options.workers ?? 1 }, (_, i) => new FakeWorker(100 + i));
  let extraWorkersAsked = 0;
  const partialsDiscarded: string[] = [];
  /** Pins held on each argument now, and whether each locate was for a task starting at once. */
  const pins = new Map<string, number>();
  const located: { id: string; starting: boolean }[] = [];
  const host: SchedulerHost = {
    objects,
    workers: () => workers,
    spawnExtraWorker: () => (extraWorkersAsked += 1),
    needWorkers: () => {},
    locate: (id, _worker, starting) => {
      located.push({ id, starting });
      return { kind: 'segment', size: 1 };
    },
    pin: (id) => pins.set(id, (pins.get(id) ?? 0) + 1),
    letGo: (id) => {
      const held = pins.get(id) ?? 0;
      assert.ok(held > 0, `${id} is let go of only while pinned`);
      if (held === 1) pins.delete(id);
      else pins.set(id, held - 1);
    },
    workerBusy: () => {},
    workerIdle: () => {},
    discardResult: () => {},
    discardPartialResult: (returnId) => partialsDiscarded.push(returnId),
    keepAlive: () => {},
    cluster: () => options.cluster,
  };
  const maxWorkers = options.maxWorkers ?? 16;
  const scheduler = new LocalScheduler({ CPU: options.cpus ?? 1 }, host, { maxWorkers, maxBlockedWorkers: options.maxBlockedWorkers ?? 64 });
  let next = 0;
  const submit = (deps: string[] = [], remote: Parameters<typeof resolveRemoteOptions>[0] = {}) => {
    const returnId = `r${next++}`;
    objects.expect(returnId);
    scheduler.submit({ returnId, fn: { source: '() => 1', hash: 'h', name: 'f' }, args: deps.map((ref) => ({ ref })), deps, contains: [], options: resolveRemoteOptions(remote) });
    return returnId;
  };
  const finish = (worker: FakeWorker) => {
    const task = worker.inflight[0]!;
    scheduler.succeed(task, { size: 1, bytes: new Uint8Array(1), contains: [] });
    scheduler.schedule();
    return task.returnId;
  };
  return { objects, workers, scheduler, submit, finish, partialsDiscarded, pins, located, extraWorkersAsked: () => extraWorkersAsked };
}

describe('LocalScheduler', () => {
  test('a task with no arguments goes to the idle worker, which then is busy with its lease', () => {
    const { workers, submit } = setup();
    const id = submit();
    assert.deepEqual(workers[0]!.executed(), [id]);
    assert.equal(workers[0]!.state, 'busy');
    assert.deepEqual(workers[0]!.lease, { CPU: 1 });
  });

  test('only the running task\'s arguments are pinned: a queued task\'s are pinned when it starts, and let go of when it ends, is recalled or its worker dies', () => {
    const { objects, workers, scheduler, submit, finish, pins, located } = setup();
    for (const id of ['a', 'b', 'c']) {
      objects.expect(id);
      objects.ready(id);
    }
    submit(['a']);
    submit(['b', 'a']);
    submit(['c']);
    assert.deepEqual(located, [
      { id: 'a', starting: true },
      { id: 'b', starting: false },
      { id: 'a', starting: false },
      { id: 'c', starting: false },
    ]);
    assert.deepEqual([...pins], [['a', 1]], 'the queued tasks pin nothing');
    finish(workers[0]!);
    assert.deepEqual([...pins].sort(), [['a', 1], ['b', 1]], 'the next task pins its arguments when it starts');
    // It waits on an object (its CPU is lent): the task queued behind it is recalled, unpinned.
    objects.expect('later');
    scheduler.whileBlocked(workers[0]!, ['later'], new Promise(() => {}), () => {});
    scheduler.tasksRecalled(workers[0]!, [workers[0]!.inflight[1]!.id]);
    assert.deepEqual([...pins].sort(), [['a', 1], ['b', 1]]);
    // Its worker dies: the running task's pins go (it is retried, unpinned until it starts again).
    workers[0]!.state = 'dead';
    scheduler.workerExited(workers[0]!, 1, null);
    assert.deepEqual([...pins], [], 'nothing stays pinned');
  });

  test('a task waits for its argument, then runs', () => {
    const { objects, workers, submit } = setup();
    objects.expect('arg');
    const id = submit(['arg']);
    assert.deepEqual(workers[0]!.executed(), []);
    objects.ready('arg');
    assert.deepEqual(workers[0]!.executed(), [id]);
  });

  test('a task whose argument failed fails with that very error', () => {
    const { objects, submit } = setup();
    objects.expect('arg');
    const id = submit(['arg']);
    const error = new Error('upstream');
    objects.fail('arg', error);
    assert.equal(objects.status(id).state, 'failed');
    assert.equal((objects.status(id) as { error: Error }).error, error);
  });

  test('with every CPU leased, tasks queue behind the running one (pipelining), up to the depth', () => {
    const { workers, submit } = setup({ cpus: 1, workers: 1 });
    const ids = Array.from({ length: 10 }, () => submit());
    assert.deepEqual(workers[0]!.executed(), ids.slice(0, 8));
    assert.equal(workers[0]!.inflight[0]!.state, 'running');
    assert.equal(workers[0]!.inflight[1]!.state, 'queued');
  });

  test('with a deep backlog of ready tasks, a busy worker queues up to DEEP_PIPELINE_DEPTH; as the backlog drains, PIPELINE_DEPTH again', () => {
    const { workers, submit, finish } = setup({ cpus: 1, workers: 1 });
    const ids = Array.from({ length: DEEP_BACKLOG }, () => submit());
    assert.equal(workers[0]!.inflight.length, PIPELINE_DEPTH, 'filled at the shallow depth while the backlog grew');
    ids.push(...Array.from({ length: DEEP_PIPELINE_DEPTH + 100 }, () => submit()));
    assert.equal(workers[0]!.inflight.length, DEEP_PIPELINE_DEPTH, 'deeper once the backlog is deep');
    finish(workers[0]!);
    assert.equal(workers[0]!.inflight.length, DEEP_PIPELINE_DEPTH, 'refilled to the deep depth');
    let finished = 1;
    let shallowAgain = false;
    while (workers[0]!.inflight.length > 0) {
      finish(workers[0]!);
      finished += 1;
      const queued = workers[0]!.inflight.length;
      assert.ok(queued <= DEEP_PIPELINE_DEPTH);
      if (shallowAgain) assert.ok(queued <= PIPELINE_DEPTH, 'not refilled past PIPELINE_DEPTH with a shallow backlog');
      else shallowAgain = ids.length - finished - queued < DEEP_BACKLOG && queued <= PIPELINE_DEPTH;
    }
    assert.ok(shallowAgain);
    assert.equal(finished, ids.length);
    assert.deepEqual(workers[0]!.executed(), ids, 'every task sent once, in order');
  });

  test('idle workers with every CPU leased (left over from blocked parents): tasks still queue behind the running one, and none is recalled', () => {
    const { workers, submit, finish } = setup({ cpus: 1, workers: 3 });
    const ids = Array.from({ length: 6 }, () => submit());
    const [busy, ...idle] = workers as [FakeWorker, FakeWorker, FakeWorker];
    assert.deepEqual(busy.executed(), ids, 'sent to the busy worker at once, not held for a lease');
    for (const worker of idle) assert.equal(worker.state, 'idle');
    finish(busy);
    assert.deepEqual(busy.sent.filter((message) => message.type === 'recall'), [], 'nothing recalled: no idle worker could start it');
    assert.equal(busy.inflight[0]!.state, 'running');
  });

  test('an idle worker with a free half CPU steals the half-CPU task queued behind a long one, though another worker queues more whole-CPU tasks', () => {
    const { workers, submit, finish, scheduler } = setup({ cpus: 2, workers: 3 });
    const [whole, half, short] = workers as [FakeWorker, FakeWorker, FakeWorker];
    submit([], { numCpus: 1 });
    submit([], { numCpus: 0.5 });
    submit([], { numCpus: 0.5 });
    const queuedWhole = [submit([], { numCpus: 1 }), submit([], { numCpus: 1 }), submit([], { numCpus: 1 })];
    const queuedHalf = submit([], { numCpus: 0.5 });
    assert.deepEqual(whole.inflight.slice(1).map((task) => task.returnId), queuedWhole);
    assert.deepEqual(half.inflight.slice(1).map((task) => task.returnId), [queuedHalf]);
    finish(short);
    assert.equal(short.state, 'idle');
    assert.equal(scheduler.available().CPU, 0.5);
    const recalled = half.sent.flatMap((message) => (message.type === 'recall' ? message.taskIds : []));
    assert.deepEqual(recalled, [half.inflight[1]!.id], 'the half-CPU task comes back for the idle worker, not left behind the long one');
  });

  test('a waiting actor is not kept from a CPU by tasks queued behind the running one while idle workers exist', () => {
    const { workers, submit, finish, scheduler } = setup({ cpus: 1, workers: 2 });
    const [busy] = workers as [FakeWorker, FakeWorker];
    submit();
    let placed = false;
    scheduler.holdForActor({ CPU: 1 }, { CPU: 1 }, () => (placed = true));
    submit();
    finish(busy);
    assert.ok(placed, 'the actor gets the CPU the finished task gave back (actors waiting come before the ready queue)');
  });

  test('finishing the running task starts the next queued one and leases stay balanced', () => {
    const { workers, submit, finish, scheduler } = setup({ cpus: 1 });
    submit();
    submit();
    finish(workers[0]!);
    assert.equal(workers[0]!.inflight.length, 1);
    assert.equal(workers[0]!.inflight[0]!.state, 'running');
    finish(workers[0]!);
    assert.equal(workers[0]!.state, 'idle');
    assert.deepEqual(scheduler.available(), { CPU: 1 });
  });

  test('a running task that blocks on a pending object lends its CPU, its queue comes back, and an extra worker is asked for', async () => {
    const { objects, workers, submit, scheduler, extraWorkersAsked } = setup({ cpus: 1, workers: 1 });
    submit();
    submit();
    objects.expect('child');
    const worker = workers[0]!;
    let resolve!: (value: string) => void;
    const settled = new Promise<string>((r) => (resolve = r));
    const replies: string[] = [];
    scheduler.whileBlocked(worker, ['child'], settled, (value) => replies.push(value));
    assert.equal(worker.blockedRequests, 1);
    const recall = worker.sent.find((message) => message.type === 'recall');
    assert.ok(recall && recall.type === 'recall', 'the queued task is recalled');
    assert.deepEqual(scheduler.available(), { CPU: 1 }, 'the CPU is lent');
    assert.equal(extraWorkersAsked(), 0);
    scheduler.tasksRecalled(worker, recall.taskIds);
    assert.equal(extraWorkersAsked(), 1, 'the task that came back needs another worker: one is asked for');
    resolve('answer');
    await settled;
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(replies, ['answer']);
    assert.equal(worker.blockedRequests, 0);
    assert.deepEqual(scheduler.available(), { CPU: 0 }, 'the CPU is taken back');
  });

  test('a request for objects that are ready lends nothing', () => {
    const { objects, workers, submit, scheduler } = setup({ cpus: 1 });
    submit();
    objects.ready('here');
    scheduler.whileBlocked(workers[0], ['here'], Promise.resolve(), () => {});
    assert.equal(workers[0]!.blockedRequests, 0);
    assert.deepEqual(scheduler.available(), { CPU: 0 });
  });

  test('a worker that dies mid-task: the task is retried, queued ones go back to the queue', () => {
    const { workers, submit, scheduler, partialsDiscarded } = setup({ cpus: 1, workers: 1 });
    const first = submit();
    const second = submit();
    const worker = workers[0]!;
    worker.state = 'dead';
    scheduler.workerExited(worker, null, 'SIGKILL');
    const retried = scheduler.tasks.get(first)!;
    assert.equal(retried.state, 'ready');
    assert.equal(scheduler.tasks.get(second)!.state, 'ready');
    assert.equal(retried.attempts, 1);
    assert.deepEqual(partialsDiscarded, [first], 'what the dead attempt wrote of its result is removed before the retry');
  });

  test('retries run out: WorkerCrashedError', () => {
    const { objects, workers, submit, scheduler } = setup({ cpus: 1, workers: 1 });
    const id = submit([], { maxRetries: 0 });
    const worker = workers[0]!;
    worker.state = 'dead';
    scheduler.workerExited(worker, 3, null);
    const status = objects.status(id) as { state: string; error?: Error };
    assert.equal(status.state, 'failed');
    assert.equal(status.error?.name, 'WorkerCrashedError');
  });

  test('cancelling a queued task recalls it; its return fails as cancelled when it comes back', () => {
    const { objects, workers, submit, scheduler } = setup({ cpus: 1 });
    submit();
    const queued = submit();
    scheduler.cancel(queued);
    const worker = workers[0]!;
    const recall = worker.sent.find((message) => message.type === 'recall');
    assert.ok(recall && recall.type === 'recall');
    scheduler.tasksRecalled(worker, recall.taskIds);
    assert.equal((objects.status(queued) as { error?: Error }).error?.name, 'TaskCancelledError');
  });

  test('cancelling a running task kills its worker', () => {
    const { workers, submit, scheduler } = setup();
    const id = submit();
    scheduler.cancel(id);
    assert.equal(workers[0]!.killed, true);
  });

  test('a demand the node can never meet is infeasible without a cluster, and spills with one', () => {
    const alone = setup({ cpus: 1 });
    const id = alone.submit([], { numCpus: 2 });
    assert.equal((alone.objects.status(id) as { error?: Error }).error?.name, 'InfeasibleTaskError');
    const spilled: string[] = [];
    const cluster: SpillTarget = { reserveElsewhere: () => true, spill: (task) => spilled.push(task.returnId), cancel: () => {} };
    const member = setup({ cpus: 1, cluster });
    const big = member.submit([], { numCpus: 2 });
    assert.deepEqual(spilled, [big]);
    assert.equal(member.scheduler.tasks.get(big)!.state, 'spilled');
  });

  test('with no room here and room elsewhere a task spills instead of queueing', () => {
    const spilled: string[] = [];
    const cluster: SpillTarget = { reserveElsewhere: () => true, spill: (task) => spilled.push(task.returnId), cancel: () => {} };
    const { submit, workers } = setup({ cpus: 1, cluster });
    const first = submit();
    const second = submit();
    assert.deepEqual(workers[0]!.executed(), [first]);
    assert.deepEqual(spilled, [second]);
  });

  test('every worker blocked at maxWorkers: more start up to maxBlockedWorkers, then the newest task fails naming the cap', () => {
    const { objects, workers, submit, scheduler, extraWorkersAsked } = setup({ cpus: 1, workers: 1, maxWorkers: 1, maxBlockedWorkers: 2 });
    const block = (worker: FakeWorker, child: string) => {
      objects.expect(child);
      scheduler.whileBlocked(worker, [child], new Promise(() => {}), () => {});
      // Tasks queued behind the blocked one come back to the ready queue.
      const recall = worker.sent.findLast((message) => message.type === 'recall');
      if (recall?.type === 'recall') scheduler.tasksRecalled(worker, recall.taskIds);
    };
    submit();
    // The only worker runs a task that is not waiting: the next one queues behind it, nothing starts.
    const second = submit();
    assert.equal(extraWorkersAsked(), 0, 'at maxWorkers with a worker making progress, no extra worker');
    // Its task blocks on a child: past maxWorkers, one more worker is started for the queue.
    block(workers[0]!, 'child-0');
    assert.equal(extraWorkersAsked(), 1, 'every worker blocked: one beyond maxWorkers');
    const extra = new FakeWorker(200);
    workers.push(extra);
    scheduler.schedule();
    assert.deepEqual(extra.executed(), [second]);
    // Both workers (the hard cap) blocked, and one more task ready: it fails rather than hangs.
    block(extra, 'child-1');
    const third = submit();
    assert.equal(extraWorkersAsked(), 1, 'no worker beyond maxBlockedWorkers');
    const status = objects.status(third) as { state: string; error?: Error };
    assert.equal(status.state, 'failed');
    assert.equal(status.error?.name, 'WorkerLimitError');
    assert.match(status.error!.message, /all 2 worker processes .*`maxBlockedWorkers`/);
    assert.equal(scheduler.tasks.get(second)!.state, 'running', 'only the newest task fails');
  });

  test('stop fails every task with RuntimeShutdownError', () => {
    const { objects, submit, scheduler } = setup();
    const ids = [submit(), submit()];
    scheduler.stop();
    for (const id of ids) assert.equal((objects.status(id) as { error?: Error }).error?.name, 'RuntimeShutdownError');
    assert.equal(scheduler.tasks.size, 0);
  });
});
