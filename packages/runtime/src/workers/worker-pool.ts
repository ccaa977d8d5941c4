import { statSync } from 'node:fs';
import { debuglog } from 'node:util';
import type { WorkerSlot } from '../scheduling/worker-slot.js';
import { WorkerSpawnError } from '@shoal/protocol';
import { WorkerHandle, type WorkerEnvironment } from './worker-handle.js';
import { NODE_ENV_KEY } from '../scheduling/runtime-env.js';
import type { ResolvedRuntimeEnv } from '../options.js';

const debug = debuglog('shoal:node');

/** Extra workers (started while others wait on objects) stop after this long idle. */
const EXTRA_WORKER_IDLE_MS = 10_000;

/** Sizes of a {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Workers kept alive (prestarted, replaced when they die): ⌈numCpus⌉. */
  readonly size: number;
}

/**
 * The node's worker processes: prestarted, replaced when they die, extra ones started while
 * others wait on objects and stopped again after a while idle. Workers die with the node (killed
 * on this process's exit; they also ask the kernel to kill them if it dies, see worker-main.ts).
 */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #environment: WorkerEnvironment;
  readonly #onExit: (worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null) => void;
  readonly #workers = new Set<WorkerHandle>();
  /** Workers of one actor each: never given tasks, not replaced by the pool (the actor's owner restarts them). */
  readonly #dedicated = new Set<WorkerHandle>();
  readonly #byPid = new Map<number, WorkerHandle>();
  #alive = false;
  #closed = false;
  /** The prestarted workers: started (or failing to start) once, at start() or at the first task. */
  #prestarted: Promise<void> | undefined;
  readonly #killAllOnExit = () => this.killAll();

  constructor(
    options: WorkerPoolOptions,
    environment: WorkerEnvironment,
    onExit: (worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null) => void,
  ) {
    this.#options = options;
    this.#environment = environment;
    this.#onExit = onExit;
  }

  /** Every worker not known to be dead. */
  workers(): Iterable<WorkerHandle> {
    return this.#workers;
  }

  /** Pids of the workers alive now. */
  pids(): number[] {
    return [...this.#workers].filter((worker) => worker.state !== 'dead').map((worker) => worker.pid);
  }

  /** The worker process `pid` this pool started, if it is alive and not connected yet. */
  unclaimed(pid: number): WorkerHandle | undefined {
    const worker = this.#byPid.get(pid);
    return worker && !worker.connection ? worker : undefined;
  }

  /** The dedicated (actor) workers not known to be dead. */
  dedicated(): Iterable<WorkerHandle> {
    return this.#dedicated;
  }

  /** Pids of the dedicated (actor) workers alive now. */
  dedicatedPids(): number[] {
    return [...this.#dedicated].filter((worker) => worker.state !== 'dead').map((worker) => worker.pid);
  }

  /**
   * Starts a worker of its own for one actor: not among {@link WorkerPool.workers} (the
   * scheduler never sees it), not replaced when it dies (`onExit` hears it), killed with the
   * others when the pool closes.
   * @throws WorkerSpawnError when the system refuses the spawn, or the pool is closing
   */
  spawnDedicated(onExit: (worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null) => void, runtimeEnv?: ResolvedRuntimeEnv): WorkerHandle {
    if (this.#closed) throw new WorkerSpawnError();
    this.#checkRuntimeEnv(runtimeEnv);
    const worker = WorkerHandle.spawn(this.#environment, (dead, code, signal) => {
      this.#dedicated.delete(dead);
      this.#byPid.delete(dead.pid);
      debug('actor worker %d exited (code %s, signal %s)', dead.pid, code, signal);
      onExit(dead, code, signal);
    }, runtimeEnv);
    this.#dedicated.add(worker);
    this.#byPid.set(worker.pid, worker);
    worker.keepAlive(this.#alive);
    debug('started actor worker %d', worker.pid);
    return worker;
  }

  /** Takes charge of the workers' lives and, with `prestart` (the default), starts them ({@link startWorkers}). */
  start(prestart = true): Promise<void> {
    process.on('exit', this.#killAllOnExit);
    return prestart ? this.startWorkers() : Promise.resolve();
  }

  /**
   * Starts the pool's `size` workers, all at once, once (later calls get the same promise);
   * resolves as soon as the first of them has connected (or all died): a task runs on the first
   * worker up, and the others join as they start. A pool started without them (a program that
   * only uses the store) gets this call when its first task arrives.
   */
  startWorkers(): Promise<void> {
    if (this.#prestarted) return this.#prestarted;
    try {
      for (let i = 0; i < this.#options.size && !this.#closed; i++) this.#spawn();
      const started = [...this.#workers];
      // `connected` also resolves when a worker dies first: resolved then only once all have.
      const up = started.map((worker) => worker.connected.then(() => (worker.state === 'dead' ? Promise.all(started.map((other) => other.connected)) : undefined)));
      this.#prestarted = started.length === 0 ? Promise.resolve() : Promise.race(up).then(() => {});
    } catch (error) {
      // Not even the prestarted workers: the node cannot run tasks, and start() says why.
      this.#prestarted = Promise.reject(error as Error);
    }
    return this.#prestarted;
  }

  /**
   * One more worker (the scheduler decides when, and how many at most: policies/extra-worker.ts),
   * for tasks of `runtimeEnv` when given (it stops once idle a while, as extra workers do).
   * @throws WorkerSpawnError only for a runtimeEnv's worker (the scheduler fails its tasks); the
   *   node's own ones are tried again at the next chance.
   */
  spawnExtra(runtimeEnv?: ResolvedRuntimeEnv): void {
    if (this.#closed) return;
    if (runtimeEnv === undefined) return this.#trySpawn();
    this.#checkRuntimeEnv(runtimeEnv);
    try {
      this.#spawn(runtimeEnv);
    } catch (error) {
      throw new Error(`its worker could not start (${(error as Error).message})`, { cause: error });
    }
  }

  /** Whether the prestarted workers were started (at start() or at the first task). */
  get prestarted(): boolean {
    return this.#prestarted !== undefined;
  }

  /**
   * A runtimeEnv's working directory must be a directory here, or its worker would not start
   * (spawn reports ENOENT only later, with no word of why).
   * @throws Error saying so, for the task's RuntimeEnvError (or the actor's death).
   */
  #checkRuntimeEnv(runtimeEnv: ResolvedRuntimeEnv | undefined): void {
    const cwd = runtimeEnv?.cwd;
    if (cwd === undefined) return;
    let directory = false;
    try {
      directory = statSync(cwd).isDirectory();
    } catch {
      // Not there (or not reachable): not a directory here either.
    }
    if (!directory) throw new Error(`cwd ${cwd} is not a directory on node ${this.#environment.sessionId}`);
  }

  /** The worker took a lease: it is not idle any more. */
  busy(worker: WorkerSlot): void {
    const handle = worker as WorkerHandle;
    if (handle.idleTimer) clearTimeout(handle.idleTimer);
    handle.idleTimer = undefined;
  }

  /** The worker went idle: an extra one stops after a while unless it gets work. */
  idle(worker: WorkerSlot): void {
    const handle = worker as WorkerHandle;
    if (handle.envKey === NODE_ENV_KEY && this.#nodeWorkers() <= this.#options.size) return;
    handle.idleTimer = setTimeout(() => {
      if (handle.state === 'idle') handle.kill();
    }, EXTRA_WORKER_IDLE_MS);
    handle.idleTimer.unref();
  }

  /** Whether the workers (processes and connections) keep this process alive. */
  keepAlive(alive: boolean): void {
    this.#alive = alive;
    for (const worker of this.#all()) worker.keepAlive(alive);
  }

  /**
   * Asks every connected worker to exit, kills those still alive after `graceMs`; resolves when
   * all are gone. A worker still starting has no connection to hear the request on, and runs
   * nothing yet: it is killed at once rather than waited for.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    await Promise.all(
      [...this.#all()].map((worker) => {
        if (!worker.connection) {
          worker.kill();
          return worker.exited;
        }
        worker.send({ type: 'shutdown' });
        worker.connection.flush();
        const force = setTimeout(() => worker.kill(), graceMs);
        return worker.exited.finally(() => clearTimeout(force));
      }),
    );
    process.off('exit', this.#killAllOnExit);
  }

  /** Kills every worker now. */
  killAll(): void {
    this.#closed = true;
    for (const worker of this.#all()) worker.kill();
  }

  #all(): WorkerHandle[] {
    return [...this.#workers, ...this.#dedicated];
  }

  /**
   * Spawns, unless the operating system refuses: then the node goes on with the workers it has
   * (the tasks wait; the next replacement or extra worker tries again) instead of failing the
   * scheduling pass or the message that caused it.
   */
  #trySpawn(): void {
    try {
      this.#spawn();
    } catch (error) {
      debug('could not start a worker: %s', (error as Error).message);
    }
  }

  /** Workers alive with the node's own environment (the ones kept at `size`). */
  #nodeWorkers(): number {
    let alive = 0;
    for (const worker of this.#workers) if (worker.state !== 'dead' && worker.envKey === NODE_ENV_KEY) alive += 1;
    return alive;
  }

  #spawn(runtimeEnv?: ResolvedRuntimeEnv): void {
    const worker = WorkerHandle.spawn(this.#environment, (dead, code, signal) => this.#exited(dead, code, signal), runtimeEnv);
    this.#workers.add(worker);
    this.#byPid.set(worker.pid, worker);
    worker.keepAlive(this.#alive);
    debug('started worker %d', worker.pid);
  }

  #exited(worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    this.#workers.delete(worker);
    this.#byPid.delete(worker.pid);
    if (worker.idleTimer) clearTimeout(worker.idleTimer);
    debug('worker %d exited (code %s, signal %s)', worker.pid, code, signal);
    this.#onExit(worker, code, signal);
  }

  /** Starts a replacement when fewer than `size` workers are alive (not once the pool is closing). */
  replenish(): void {
    if (this.#closed || !this.#prestarted) return;
    if (this.#nodeWorkers() < this.#options.size) this.#trySpawn();
  }
}
