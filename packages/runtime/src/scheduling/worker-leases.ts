import type { WireArg, ObjectLocation } from '@shoal/protocol';
import { endLending, lend, unblock } from './cpu-lending.js';
import { acquire, giveBack, type Resources } from './resources.js';
import type { Task } from './task.js';
import type { WorkerSlot } from './worker-slot.js';

/** What {@link WorkerLeases} tells the node about workers it leases. */
export interface LeaseEvents {
  /**
   * Where argument `id` is, for `worker` (which may then map it). `starting`: the task runs at
   * once (it is not queued behind another), and its arguments are pinned right after.
   */
  locate(id: string, worker: WorkerSlot, starting: boolean): ObjectLocation;
  /** A task with argument `id` starts on its worker: the object stays in memory until {@link LeaseEvents.letGo}. */
  pin(id: string): void;
  /** The running task with argument `id` left its worker (done, failed, or to be retried). */
  letGo(id: string): void;
  /** A worker got a lease / gave it back and went idle (the pool reaps extra idle workers). */
  workerBusy(worker: WorkerSlot): void;
  workerIdle(worker: WorkerSlot): void;
  /** Told of each task's submission, start and end (the node's metrics and diagnostics channels). */
  readonly taskEvents?: TaskEvents;
}

/** What happens to tasks, as the scheduler tells it (times are on the task: `submittedAt`, `startedAt`). */
export interface TaskEvents {
  submitted(task: Task): void;
  /** A run of the task starts on worker `workerPid` (each attempt). */
  started(task: Task, workerPid: number): void;
  /** The task is over: its result is stored, or it failed with `error` for good. */
  ended(task: Task, error?: Error): void;
  /** A run of the task ended in `error` (it threw, its worker died) and it runs again. */
  retried?(task: Task, error: Error): void;
}

/**
 * The node's resources and the workers' queues: leases taken and given back, tasks sent to a
 * worker's queue, started at its head and taken off it, CPU lent while a running task waits. The
 * scheduler decides; this keeps the books. The only code that changes `available`.
 */
export class WorkerLeases {
  readonly #available: Resources;
  readonly #events: LeaseEvents;

  constructor(total: Readonly<Resources>, events: LeaseEvents) {
    this.#available = { ...total };
    this.#events = events;
  }

  /** Resources not leased now (a snapshot for the policies). */
  get available(): Readonly<Resources> {
    return this.#available;
  }

  /** Holds `demand` for an actor while it lives (it fits: the caller checked). */
  holdFor(demand: Readonly<Resources>): void {
    acquire(this.#available, demand);
  }

  /** An actor that held `demand` is gone. */
  releaseFrom(demand: Readonly<Resources>): void {
    giveBack(this.#available, demand);
  }

  /** The task `taskId` sent to `worker`, if it is still that worker's. */
  taskOf(worker: WorkerSlot, taskId: number): Task | undefined {
    // A worker's queue is at most DEEP_PIPELINE_DEPTH long, and the task asked for is nearly always
    // its head (the one running): no second index of them is kept.
    for (const task of worker.inflight) if (task.id === taskId) return task;
    return undefined;
  }

  /** Gives an idle worker a lease on the task's resources and starts the task on it. */
  dispatch(task: Task, worker: WorkerSlot): void {
    acquire(this.#available, task.demand);
    worker.lease = task.demand;
    worker.state = 'busy';
    this.#events.workerBusy(worker);
    this.send(task, worker);
  }

  /** Sends the task to the worker's queue; it starts now if the worker has nothing else. */
  send(task: Task, worker: WorkerSlot): void {
    task.state = 'queued';
    task.worker = worker;
    worker.inflight.push(task);
    const starting = worker.inflight.length === 1;
    // A task that starts now has its arguments pinned before any is located: reading one back
    // from disk must not spill another it needs.
    if (starting) this.#pin(task);
    const fn = worker.functions.has(task.fn.hash)
      ? { hash: task.fn.hash, name: task.fn.name }
      : { hash: task.fn.hash, name: task.fn.name, source: task.fn.source };
    worker.functions.add(task.fn.hash);
    const args = task.args.map((arg): WireArg => ('ref' in arg ? { ref: arg.ref, location: this.#events.locate(arg.ref, worker, starting) } : arg));
    const window = task.options.streamWindow;
    worker.send({ type: 'execute', taskId: task.id, returnId: task.returnId, fn, args, ...(window === undefined ? {} : { streamWindow: window }) });
    if (starting) this.#start(task, true);
  }

  /** Asks a worker to give back queued tasks it has not started (it answers 'recalled'). */
  recall(worker: WorkerSlot, tasks: readonly Task[]): void {
    const ids: number[] = [];
    for (const task of tasks) {
      if (task.state !== 'queued' || task.recalling) continue;
      task.recalling = true;
      ids.push(task.id);
    }
    if (ids.length > 0) worker.send({ type: 'recall', taskIds: ids });
  }

  /** The task is at the head of its worker's queue: it runs now (`pinned`: its arguments are already). */
  #start(task: Task, pinned = false): void {
    task.state = 'running';
    task.attempts += 1;
    if (!pinned) this.#pin(task);
    const worker = task.worker!;
    task.startedAt = performance.now();
    task.ranOn = worker.pid;
    this.#events.taskEvents?.started(task, worker.pid);
    if (task.options.timeoutMs !== null) {
      task.timer = setTimeout(() => {
        task.ending = 'timeout';
        worker.kill();
      }, task.options.timeoutMs);
    }
  }

  /**
   * Its worker maps the task's arguments when it starts: none may be spilled until it is done
   * (a queued task's may: its worker asks again for one that went, see TaskExecutor).
   */
  #pin(task: Task): void {
    for (const arg of task.args) if ('ref' in arg) this.#events.pin(arg.ref);
  }

  /**
   * Takes the task off its worker. If it was running there, the worker moves on to its next
   * queued task, or gives its lease back and becomes idle.
   */
  detach(task: Task): void {
    const worker = task.worker;
    if (task.timer) clearTimeout(task.timer);
    task.timer = undefined;
    task.worker = undefined;
    if (!worker) return;
    const index = worker.inflight.indexOf(task);
    if (index < 0) return;
    worker.inflight.splice(index, 1);
    // The head of a worker's queue is the task running there, the only one whose arguments are pinned.
    if (index === 0) for (const arg of task.args) if ('ref' in arg) this.#events.letGo(arg.ref);
    if (index !== 0 || worker.state === 'dead') return;
    endLending(this.#available, worker);
    if (worker.inflight.length > 0) this.#start(worker.inflight[0]!);
    else {
      this.endLease(worker);
      worker.state = 'idle';
      this.#events.workerIdle(worker);
    }
  }

  /** The worker gives its lease back (it is idle, or dead). */
  endLease(worker: WorkerSlot): void {
    endLending(this.#available, worker);
    if (worker.lease) giveBack(this.#available, worker.lease);
    worker.lease = undefined;
  }

  /** The worker's running task waits on objects: true if this lent its CPUs (then tasks queued behind it come back). */
  block(worker: WorkerSlot): boolean {
    if (!lend(this.#available, worker)) return false;
    this.recall(worker, worker.inflight.slice(1));
    return true;
  }

  /** One of the waiting requests of the worker's running `task` was answered. */
  unblock(worker: WorkerSlot, task: Task): void {
    if (worker.inflight[0] === task) unblock(this.#available, worker);
  }
}
