import { debuglog } from 'node:util';
import {
  InfeasibleTaskError,
  ObjectFreedError,
  RuntimeEnvError,
  RuntimeShutdownError,
  TaskCancelledError,
  TaskError,
  TaskTimeoutError,
  WorkerCrashedError,
  WorkerLimitError,
  type ObjectPayload,
} from '@shoal/protocol';
import { extraWorker, type WorkerLimits } from './policies/extra-worker.js';
import { place } from './policies/local-fit.js';
import { firstStartable } from './policies/lookahead.js';
import { pipelineDepth, pipelineTarget } from './policies/pipeline.js';
import { stealFrom } from './policies/steal.js';
import { ReadyQueue } from './ready-queue.js';
import { NODE_ENV_KEY, envKeyOf } from './runtime-env.js';
import { acquire, demandOf, giveBack, type Resources } from './resources.js';
import { mayRetry, retriesException } from './retry.js';
import type { Task } from './task.js';
import type { WorkerSlot } from './worker-slot.js';
import { WorkerLeases } from './worker-leases.js';
import type { SchedulerHost, TaskSubmission } from './scheduler-ports.js';

export type { SchedulerHost, SpillTarget, TaskObjects, TaskSubmission } from './scheduler-ports.js';

const debug = debuglog('shoal:node');

/**
 * The node's local scheduler: every task from submission until its return object settles —
 * waiting (for its arguments) → ready → queued on a worker → running → finished, or spilled to the
 * head. It applies the policies in ./policies and owns the node's resource accounting; the workers'
 * messages arrive through the `task…` methods. See docs/internals.md ("Leases, pipelining, recall").
 */
export class LocalScheduler {
  readonly total: Readonly<Resources>;
  readonly #host: SchedulerHost;
  readonly #limits: WorkerLimits;
  readonly #tasks = new Map<string, Task>();
  readonly #leases: WorkerLeases;
  readonly #ready = new ReadyQueue();
  #nextTaskId = 1;
  #stopped = false;
  readonly #actorsWaiting: { demand: Readonly<Resources>; placed: () => void }[] = [];
  #placingActors = false;
  #placeAgain = false;
  readonly #demands = new WeakMap<object, Readonly<Resources>>();

  constructor(total: Readonly<Resources>, host: SchedulerHost, limits: WorkerLimits) {
    this.total = total;
    this.#limits = limits;
    this.#leases = new WorkerLeases(total, host);
    this.#host = host;
  }

  /** Tasks not finished, by return id. */
  get tasks(): ReadonlyMap<string, Task> {
    return this.#tasks;
  }

  /** Resources free now, minus what tasks the head placed here but that have not started will take. */
  available(): Resources {
    const available = { ...this.#leases.available };
    for (const task of this.#tasks.values()) {
      if (task.placement === 'local' && (task.state === 'waiting' || task.state === 'ready')) acquire(available, task.demand);
    }
    return available;
  }

  /** Takes a task; it runs once its arguments are ready. */
  submit(submission: TaskSubmission): void {
    const { returnId, fn, deps, contains, options } = submission;
    this.#host.needWorkers();
    // One demand per options object (every call of a remote function shares its options): a
    // million queued calls share one.
    let demand = this.#demands.get(options);
    if (demand === undefined) this.#demands.set(options, (demand = demandOf(options)));
    const task: Task = {
      id: this.#nextTaskId++,
      returnId,
      fn,
      args: submission.args,
      deps,
      contains,
      options,
      demand,
      state: 'waiting',
      unsettled: deps.length,
      attempts: 0,
      submittedAt: performance.now(),
      startedAt: 0,
      ranOn: 0,
      spilled: false,
      forwarded: submission.forwarded ?? false,
      worker: undefined,
      timer: undefined,
      ending: undefined,
      recalling: false,
      placement: submission.placement ?? 'any',
      submitter: submission.submitter,
    };
    const objects = this.#host.objects;
    this.#tasks.set(returnId, task);
    this.#host.taskEvents?.submitted(task);
    this.#host.keepAlive(true);
    // The task holds what it will read: its arguments can't be freed under it.
    for (const id of contains) objects.hold(id);
    const missing = deps.length === 0 ? deps : deps.filter((id) => !objects.hold(id));
    const fit = place(demand, this.#leases.available, this.total);
    if (fit.kind === 'infeasible') {
      if (!this.#host.cluster() || task.placement === 'local') {
        this.fail(task, new InfeasibleTaskError(fn.name, fit.reason));
        return;
      }
      task.placement = 'elsewhere';
    }
    if (missing.length > 0) {
      this.fail(task, new ObjectFreedError(missing[0]!, ` before task ${fn.name} that takes it could start`));
      return;
    }
    if (deps.length === 0) {
      this.#makeReady(task);
      return;
    }
    for (const id of deps) {
      objects.onSettled(id, () => {
        task.unsettled -= 1;
        if (task.unsettled === 0 && task.state === 'waiting') this.#makeReady(task);
      });
    }
  }

  #makeReady(task: Task): void {
    for (const id of task.deps) {
      const status = this.#host.objects.status(id);
      if (status.state === 'failed') {
        // Dependents fail with the very error of the task they depend on.
        this.fail(task, status.error);
        return;
      }
      if (status.state === 'freed') {
        this.fail(task, new ObjectFreedError(id, ` before task ${task.fn.name} that takes it could start`));
        return;
      }
    }
    if (task.placement === 'elsewhere') {
      this.#spill(task);
      return;
    }
    task.state = 'ready';
    this.#ready.push(task);
    this.schedule();
  }

  #spill(task: Task): void {
    task.state = 'spilled';
    task.spilled = true;
    this.#host.cluster()!.spill(task);
  }

  /**
   * Holds `demand` for an actor while it lives, once it fits: `placed` calls back at once or
   * after the tasks running now have given enough back (actors waiting come before the ready
   * queue; one that does not fit yet holds back none that do). Returns why it can never fit
   * here (nothing is held), or how to stop waiting.
   * `placement`: what it needs to be placed (a CPU, though it holds none while it lives).
   */
  holdForActor(demand: Readonly<Resources>, placement: Readonly<Resources>, placed: () => void): { infeasible: string } | { cancel: () => void } {
    for (const needed of [placement, demand]) {
      const fit = place(needed, this.total, this.total);
      if (fit.kind === 'infeasible') return { infeasible: fit.reason };
    }
    const waiting = { demand, placed };
    this.#actorsWaiting.push(waiting);
    this.schedule();
    // The actor died before it was placed: it waits no more (nothing was held for it).
    return {
      cancel: () => {
        const index = this.#actorsWaiting.indexOf(waiting);
        if (index >= 0) this.#actorsWaiting.splice(index, 1);
      },
    };
  }

  /** An actor that held `demand` is gone: tasks may use it again. */
  releaseFromActor(demand: Readonly<Resources>): void {
    this.#leases.releaseFrom(demand);
    this.schedule();
  }

  /**
   * Actors waiting for their resources, in the order they asked: each that fits now is placed.
   * Not re-entered: a placement whose actor dies at once gives its resources back and schedules,
   * and that pass only asks for another round of this one.
   */
  #placeActors(): void {
    if (this.#placingActors) {
      this.#placeAgain = true;
      return;
    }
    this.#placingActors = true;
    try {
      do {
        this.#placeAgain = false;
        for (let i = 0; i < this.#actorsWaiting.length; ) {
          const next = this.#actorsWaiting[i]!;
          if (place(next.demand, this.#leases.available, this.total).kind !== 'placed') {
            i += 1;
            continue;
          }
          this.#actorsWaiting.splice(i, 1);
          this.#leases.holdFor(next.demand);
          next.placed();
        }
      } while (this.#placeAgain);
    } finally {
      this.#placingActors = false;
    }
  }

  /** Starts what can start: a pass over the ready queue. */
  schedule(): void {
    if (this.#stopped) return;
    if (this.#actorsWaiting.length > 0) this.#placeActors();
    const cluster = this.#host.cluster();
    for (this.#ready.dropStale(); this.#ready.length > 0; this.#ready.dropStale()) {
      const next = this.#ready.at(0)!;
      if (cluster && next.placement === 'any' && !this.#startable(next) && cluster.reserveElsewhere(next.demand)) {
        // No room here, room on another node: the head places it (on the node holding most of
        // its arguments among those with room).
        this.#ready.shift();
        this.#spill(next);
        continue;
      }
      const key = envKeyOf(next.options.runtimeEnv);
      const worker = this.#idleWorker(key);
      if (!worker) {
        if (key !== NODE_ENV_KEY) {
          // A task of its own environment waits for a worker started for it (never queued behind
          // a running one, never stolen: only workers of that environment may run it).
          if (this.#startEnvWorker(next, key)) continue;
          return;
        }
        // Every worker is busy. If the head could run anyway, workers are blocked waiting on
        // objects and lent their CPU back (or tasks take fractions of a CPU): start another and
        // let the task wait for it. Otherwise queue it behind a running task.
        if (place(next.demand, this.#leases.available, this.total).kind === 'placed') {
          const decision = extraWorker(this.#workersOf(NODE_ENV_KEY), this.#limits);
          if (decision === 'spawn') this.#host.spawnExtraWorker();
          if (decision === 'over-cap') this.#failNewest();
          return;
        }
        const target = this.#pipelineTarget(next);
        if (!target) return;
        this.#ready.shift();
        this.#leases.send(next, target);
        continue;
      }
      const index = firstStartable(this.#ready.length, (i) => this.#ready.at(i)!, (task) => this.#startable(task) && envKeyOf(task.options.runtimeEnv) === worker.envKey);
      if (index < 0) {
        // An idle worker, yet nothing can start: every CPU is leased (idle workers are left over
        // from parents that blocked). The head of the queue waits behind a running task, as when
        // no worker is idle, rather than for a lease to come back.
        const target = key === NODE_ENV_KEY ? this.#pipelineTarget(next) : undefined;
        if (!target) return;
        this.#ready.shift();
        this.#leases.send(next, target);
        continue;
      }
      this.#leases.dispatch(this.#ready.removeAt(index)!, worker);
    }
    if (this.#idleWorker(NODE_ENV_KEY)) {
      // Only what an idle worker could start now: with every CPU leased, a recalled task would be
      // queued behind a running one again, and recalled again. The busiest queue among those that
      // could start (a longer one of tasks that cannot must not keep a fitting one waiting).
      const steal = stealFrom(this.#workersOf(NODE_ENV_KEY), (task) => place(task.demand, this.#leases.available, this.total).kind === 'placed');
      if (steal) this.#leases.recall(steal.worker, steal.tasks);
    }
  }

  /**
   * A busy worker to queue `task` behind (see {@link pipelineTarget}), but none whose lease a
   * waiting actor could be placed with once it comes back: queued tasks keep a worker's lease
   * from ever coming back while they keep coming, and actors waiting come before the ready queue.
   */
  #pipelineTarget(task: Task): WorkerSlot | undefined {
    const workers = this.#workersOf(NODE_ENV_KEY);
    const depth = pipelineDepth(this.#ready.length);
    if (this.#actorsWaiting.length === 0) return pipelineTarget(task, workers, depth);
    return pipelineTarget(task, this.#withoutLeasesActorsWant(workers), depth);
  }

  *#withoutLeasesActorsWant(workers: Iterable<WorkerSlot>): Iterable<WorkerSlot> {
    for (const worker of workers) {
      if (!worker.lease) continue;
      const afterwards = { ...this.#leases.available };
      giveBack(afterwards, worker.lease);
      if (!this.#actorsWaiting.some((actor) => place(actor.demand, afterwards, this.total).kind === 'placed')) yield worker;
    }
  }

  /**
   * The head of the ready queue needs a worker of its runtimeEnv (`key`) and none is idle: one is
   * started when its CPUs are free and none is starting already. True when the task failed
   * instead (its environment cannot be set up here) and the queue moves on; false to wait.
   */
  #startEnvWorker(task: Task, key: string): boolean {
    if (place(task.demand, this.#leases.available, this.total).kind !== 'placed') return false;
    for (const worker of this.#workersOf(key)) if (worker.state === 'starting') return false;
    try {
      this.#host.spawnExtraWorker(task.options.runtimeEnv);
      return false;
    } catch (error) {
      this.#ready.shift();
      this.fail(task, new RuntimeEnvError(task.fn.name, (error as Error).message, { cause: error }));
      return true;
    }
  }

  /** The node's workers started for the environment `key`. */
  *#workersOf(key: string): Iterable<WorkerSlot> {
    for (const worker of this.#host.workers()) if (worker.envKey === key) yield worker;
  }

  /**
   * Every worker, up to the hard cap, is blocked waiting on objects: the newest ready task fails
   * (typically a child some blocked parent waits for, which then sees the error and frees its
   * worker) rather than every task waiting forever.
   */
  #failNewest(): void {
    let newest: Task | undefined;
    for (let i = 0; i < this.#ready.length; i++) {
      const task = this.#ready.at(i)!;
      if (task.state === 'ready' && (!newest || task.id > newest.id)) newest = task;
    }
    if (!newest) return;
    debug('every one of %d workers is blocked: failing task %s', this.#limits.maxBlockedWorkers, newest.fn.name);
    this.fail(newest, new WorkerLimitError(newest.fn.name, this.#limits.maxBlockedWorkers));
  }

  #startable(task: Task): boolean {
    return task.state === 'ready' && place(task.demand, this.#leases.available, this.total).kind === 'placed';
  }

  #idleWorker(key: string): WorkerSlot | undefined {
    for (const worker of this.#host.workers()) if (worker.state === 'idle' && worker.envKey === key) return worker;
    return undefined;
  }

  /** The task `taskId` sent to `worker`, if it is still that worker's. */
  taskOf(worker: WorkerSlot, taskId: number): Task | undefined {
    return this.#leases.taskOf(worker, taskId);
  }

  #finish(task: Task): void {
    this.#leases.detach(task);
    task.state = 'finished';
    this.#tasks.delete(task.returnId);
    // Told at every task's end (not only the last): the node weighs tasks against paused streams.
    if (!this.#stopped) this.#host.keepAlive(this.#tasks.size > 0);
  }

  /** The task is over for good: its holds go, its return object settles as failed. */
  fail(task: Task, error: Error): void {
    if (task.state === 'finished') return;
    // A task still in the ready queue is skipped there once finished.
    this.#finish(task);
    this.#host.taskEvents?.ended(task, error);
    this.#host.objects.fail(task.returnId, error);
    this.#dropHolds(task);
  }

  /** The task produced `result` (here or, spilled, elsewhere). */
  succeed(task: Task, result: ObjectPayload): void {
    if (task.ending === 'cancel') {
      this.#host.discardResult(task.returnId, result);
      this.fail(task, new TaskCancelledError(task.fn.name));
      return;
    }
    this.#finish(task);
    this.#host.taskEvents?.ended(task);
    if (this.#host.objects.isPending(task.returnId)) this.#host.objects.register(task.returnId, result);
    else this.#host.discardResult(task.returnId, result);
    this.#dropHolds(task);
  }

  #dropHolds(task: Task): void {
    for (const id of task.deps) this.#host.objects.release(id);
    for (const id of task.contains) this.#host.objects.release(id);
  }

  /** Puts tasks back at the front of the ready queue, in order. */
  #requeue(tasks: Task[]): void {
    for (const task of tasks) {
      this.#leases.detach(task);
      task.state = 'ready';
      task.recalling = false;
    }
    this.#ready.unshift(tasks);
  }

  /**
   * The task failed in a way that may be retried: it goes back to the front of the ready queue
   * while `maxRetries` allows (the caller schedules once for everything that happened).
   */
  retryOrFail(task: Task, error: Error): void {
    if (mayRetry(task) && !this.#stopped) {
      debug('retrying task %s (attempt %d): %s', task.fn.name, task.attempts + 1, error.message);
      this.#host.taskEvents?.retried?.(task, error);
      this.#requeue([task]);
      return;
    }
    this.fail(task, error);
  }

  /**
   * The task's function threw `thrown` on its worker (or its result was refused room: then
   * `refusal` is why): a cancelled task fails as cancelled, one whose `retryExceptions` covers it
   * is retried, any other fails with the TaskError.
   */
  taskFailed(task: Task, thrown: unknown, refusal?: Error): void {
    // A result the node had no room for fails as that refusal (ObjectStoreFullError), which is not
    // the task's own error; retryExceptions may still retry it, as room may come back.
    const error = refusal ?? new TaskError(task.fn.name, thrown);
    if (task.ending === 'cancel') this.fail(task, new TaskCancelledError(task.fn.name));
    else if (retriesException(task, thrown)) this.retryOrFail(task, error);
    else this.fail(task, error);
  }

  /** Puts a task that was spilled, and came back, at the front of the ready queue (the caller schedules). */
  readyAgain(task: Task): void {
    task.state = 'ready';
    this.#ready.unshift([task]);
  }

  /** Stops the task whose result is `returnId`: dropped if queued, its worker killed if running. */
  cancel(returnId: string): void {
    const task = this.#tasks.get(returnId);
    if (!task || task.state === 'finished') return;
    if (task.state === 'spilled') {
      this.#host.cluster()?.cancel(returnId);
      this.fail(task, new TaskCancelledError(task.fn.name));
      return;
    }
    if (task.worker && (task.state === 'running' || task.state === 'queued')) {
      task.ending = 'cancel';
      // A queued task is recalled (and failed when the worker gives it back); a running one
      // is stopped the only way a synchronous function can be: by killing its worker.
      if (task.state === 'running') task.worker.kill();
      else if (!task.recalling) this.#leases.recall(task.worker, [task]);
      // (Already on its way back: 'recalled' fails it as cancelled.)
      return;
    }
    this.fail(task, new TaskCancelledError(task.fn.name));
    this.schedule();
  }

  /** A worker gave back queued tasks it had not started. */
  tasksRecalled(worker: WorkerSlot, taskIds: readonly number[]): void {
    const back: Task[] = [];
    for (const id of taskIds) {
      const task = this.taskOf(worker, id);
      if (!task || task.state !== 'queued') continue;
      if (task.ending === 'cancel') this.fail(task, new TaskCancelledError(task.fn.name));
      else back.push(task);
    }
    this.#requeue(back);
    this.schedule();
  }

  /**
   * `worker` asked for objects `ids` and is answered when `settled` resolves. Meanwhile, if its
   * running task waits on objects that are not ready, its CPU is lent so other tasks (often the
   * ones it waits for) can run, and tasks queued behind it come back (they may be what it waits for).
   */
  whileBlocked<T>(worker: WorkerSlot | undefined, ids: readonly string[], settled: Promise<T>, reply: (value: T) => void): void {
    const task = worker?.inflight[0];
    const blocks =
      worker !== undefined && task !== undefined && worker.lease !== undefined && ids.some((id) => this.#host.objects.status(id).state === 'pending');
    if (blocks && this.#leases.block(worker)) this.schedule();
    void settled.then((value) => {
      if (blocks) this.#leases.unblock(worker, task);
      reply(value);
    });
  }

  /** A worker process exited: its queued tasks run elsewhere, its running one is retried or fails. */
  workerExited(worker: WorkerSlot, code: number | null, signal: NodeJS.Signals | null): void {
    const [task, ...queued] = worker.inflight;
    // Tasks queued behind the one that was running never started: they simply run elsewhere.
    this.#requeue(queued.filter((waiting) => waiting.ending !== 'cancel'));
    for (const waiting of queued) {
      if (waiting.ending === 'cancel') this.fail(waiting, new TaskCancelledError(waiting.fn.name));
    }
    if (task && task.state === 'running') {
      // It may have died while writing its result: reclaim the half-written file before a
      // retry writes the same name again (and so that a failure leaves nothing behind).
      this.#host.discardPartialResult(task.returnId);
      if (task.ending === 'timeout') this.fail(task, new TaskTimeoutError(task.fn.name, task.options.timeoutMs ?? 0));
      else if (task.ending === 'cancel') this.fail(task, new TaskCancelledError(task.fn.name));
      else this.retryOrFail(task, new WorkerCrashedError(task.fn.name, code, signal, task.attempts));
    }
    this.#leases.endLease(worker);
  }

  /** The node is shutting down: every task fails with RuntimeShutdownError and nothing starts again. */
  stop(): void {
    this.#stopped = true;
    for (const task of [...this.#tasks.values()]) this.fail(task, new RuntimeShutdownError(`Task ${task.fn.name} did not finish`));
  }
}
