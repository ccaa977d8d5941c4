import { createServer, type Server } from 'node:net';
import { debuglog } from 'node:util';
import {
  InfeasibleTaskError,
  ObjectFreedError,
  ObjectNotFoundError,
  checkObjectName,
  ObjectRef,
  RuntimeShutdownError,
  ShoalError,
  formatBytes,
  TaskCancelledError,
  TaskError,
  TaskTimeoutError,
  WorkerCrashedError,
  decodeWorkerMessage,
  isValidId,
  newObjectId,
  type ClusterArg,
  type ClusterResult,
  type ClusterTask,
  type NodeToWorker,
  type ObjectLocation,
  type WireArg,
  type WireTask,
  type WorkerToNode,
} from '@shoal/protocol';
import { ObjectStore, nodeSocketPath, type ObjectWriter, type StoreOptions, type StoreStats, type TypedArrayKind } from '@shoal/store';
import { Connection, type MessageStream } from '../transport/connection.js';
import type { FunctionSource } from '../api/function-source.js';
import { resolveNodeOptions, type NodeOptions, type ResolvedNodeOptions, type ResolvedRemoteOptions } from '../options.js';
import type { NamedVersion, Runtime, WaitResult } from '../api/runtime.js';
import { buildArgs } from '../api/task-args.js';
import { decodeThrown, encodeError, toWireFailure } from '../thrown.js';
import { TaskQueue } from '../scheduling/task-queue.js';
import { watchIterator } from '../api/watch-iterator.js';
import { place, type Task } from '../scheduling/task.js';
import { acquire, demandOf, giveBack, sameDemand, type Resources } from '../scheduling/resources.js';
import { ClientHandle, type Peer } from './client-handle.js';
import { WorkerHandle } from '../workers/worker-handle.js';

const debug = debuglog('shoal:node');

/** Extra workers (started while others wait on objects) stop after this long idle. */
const EXTRA_WORKER_IDLE_MS = 10_000;
/** How many ready tasks a scheduling pass looks past a head that does not fit. */
const SCHEDULING_LOOKAHEAD = 64;
/** Largest frame of a remote driver's connection (its objects travel whole). */
export const REMOTE_MAX_FRAME_BYTES = 1024 ** 3 + (1 << 20);
/** Tasks a busy worker may have queued behind its running one (saves a round trip each). */
const PIPELINE_DEPTH = 8;

/**
 * What a node that is part of a cluster gets from its cluster agent (see cluster/cluster-node.ts).
 * Without one the node is a cluster of one.
 */
export interface ClusterHooks {
  /** Whether, by the head's last word, another node has room for `demand` now. */
  hasRoomElsewhere(demand: Readonly<Resources>): boolean;
  /** Hands a task that cannot start here to the head, with its arguments as they cross nodes. */
  spill(task: Task, args: ClusterArg[]): void;
  /** Fetches object `id` (made by node `owner`) into this node's store, which expects it. */
  fetch(id: string, owner: string): void;
  /** A task the head sent here ended: its result (kept here if in a segment) goes to `origin`. */
  finished(origin: string, returnId: string, result: ClusterResult): void;
  /** The submitter gave up on a spilled task. */
  cancel(returnId: string): void;
}

/** Options of a node: its object store and its resources. */
export interface NodeManagerOptions extends StoreOptions, NodeOptions {}

/** Lifecycle of a node. */
export type NodeState = 'running' | 'closing' | 'closed';

/**
 * A node: the object store of this machine's session, the worker processes, and the local
 * scheduler that runs tasks on them. In the embedded default it lives inside the driver process,
 * which is why it implements {@link Runtime} directly.
 *
 * Workers connect over a unix socket in the session directory and speak the protocol of
 * `@shoal/protocol`'s worker-protocol.ts. They read and write segments themselves; only small
 * messages go through the socket.
 */
export class NodeManager implements Runtime {
  readonly kind = 'driver' as const;
  readonly store: ObjectStore;
  readonly options: ResolvedNodeOptions;
  readonly socketPath: string;
  /** Where other processes of this machine attach: `init({ address })` or `SHOAL_ADDRESS`. */
  readonly address: string;
  readonly #server: Server;
  readonly #listening: Promise<void>;
  readonly #total: Readonly<Resources>;
  readonly #available: Resources;
  readonly #workers = new Set<WorkerHandle>();
  readonly #byPid = new Map<number, WorkerHandle>();
  readonly #clients = new Set<ClientHandle>();
  /** Named objects: name -> current binding. Each binding holds its object. */
  readonly #names = new Map<string, { id: string; version: number }>();
  readonly #watchers = new Map<string, Set<(binding: { id: string; version: number }) => void>>();
  readonly #tasks = new Map<string, Task>();
  readonly #running = new Map<number, Task>();
  readonly #ready = new TaskQueue();
  #nextTaskId = 1;
  #cluster: ClusterHooks | undefined;
  #state: NodeState = 'running';
  /** Whether the node's sockets and workers keep the process alive (only while tasks are pending). */
  #alive = false;
  readonly #killWorkersOnExit = () => {
    for (const worker of this.#workers) worker.kill();
  };

  constructor(options: NodeManagerOptions = {}) {
    const { numCpus, resources, maxWorkers, ...storeOptions } = options;
    this.options = resolveNodeOptions(stripUndefined({ numCpus, resources, maxWorkers }));
    this.store = new ObjectStore(storeOptions);
    this.#total = { CPU: this.options.numCpus, ...this.options.resources };
    this.#available = { ...this.#total };
    this.store.on('delete', (id) => this.#forgetEverywhere(id));
    this.socketPath = nodeSocketPath(this.store.directory);
    this.address = `unix:${this.socketPath}`;
    this.#server = createServer((socket) => this.#accept(socket));
    this.#listening = new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.socketPath, () => {
        this.#server.off('error', reject);
        resolve();
      });
      this.#server.unref();
    });
    // A failure to listen surfaces through ready(); never as an unhandled rejection.
    this.#listening.catch(() => {});
    process.on('exit', this.#killWorkersOnExit);
    for (let i = 0; i < Math.ceil(this.options.numCpus); i++) this.#spawnWorker();
  }

  get state(): NodeState {
    return this.#state;
  }

  /** Resolves once the node accepts worker connections and its prestarted workers are up. */
  async ready(): Promise<void> {
    // The node's own handles do not keep the process alive while no task is pending; whoever
    // awaits readiness must not see the event loop run dry meanwhile.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await this.#untilReady();
    } finally {
      clearInterval(keepAlive);
    }
  }

  async #untilReady(): Promise<void> {
    await this.#listening;
    await Promise.all(
      [...this.#workers].map(
        (worker) =>
          new Promise<void>((resolve) => {
            const check = () => (worker.state === 'starting' ? setTimeout(check, 5) : resolve());
            check();
          }),
      ),
    );
  }

  /** Resources, load and objects of this node right now (what it reports to its head). */
  load(): {
    resources: Record<string, number>;
    available: Record<string, number>;
    objects: number;
    objectBytes: number;
    capacityBytes: number;
    queuedTasks: number;
    runningTasks: number;
    workers: number;
  } {
    const stats = this.store.stats();
    let running = 0;
    // Tasks the head placed here that have not started (their arguments are still on their way)
    // are room already taken, as far as the head is concerned.
    const available = { ...this.#available };
    for (const task of this.#tasks.values()) {
      if (task.state === 'running') running += 1;
      if (task.placement === 'local' && (task.state === 'waiting' || task.state === 'ready')) {
        acquire(available, task.demand);
      }
    }
    return {
      resources: { ...this.#total },
      available,
      objects: stats.objects,
      objectBytes: stats.usedBytes + stats.inlineBytes,
      capacityBytes: stats.capacity,
      queuedTasks: this.#tasks.size - running,
      runningTasks: running,
      workers: this.workerPids().length,
    };
  }

  /** Worker processes alive now (for tests and status). */
  workerPids(): number[] {
    return [...this.#workers].filter((worker) => worker.state !== 'dead').map((worker) => worker.pid);
  }

  // ---- cluster -----------------------------------------------------------------------------

  /** Makes this node part of a cluster: tasks that cannot run here spill, missing objects are fetched. */
  joinCluster(hooks: ClusterHooks): void {
    this.#cluster = hooks;
  }

  /**
   * Runs a task the head placed here for node `origin`. Arguments this node lacks are registered
   * (inline ones came with the task) or fetched (`fetch` is told); the result is reported through
   * the hooks' `finished` and, when in a segment, kept here (held) until the origin pulled it.
   */
  runForeign(origin: string, task: ClusterTask, fetch: (id: string, size: number) => void): void {
    if (this.#state !== 'running' || this.#tasks.has(task.returnId) || !isValidId(task.returnId)) return;
    if (this.store.status(task.returnId).state !== 'freed') {
      // It ran here already (the head lost sight of this node meanwhile and placed it again):
      // the result is still here, kept for the origin; report it once more.
      if (!this.#keptFor.has(task.returnId) && this.store.hold(task.returnId)) this.#keptFor.set(task.returnId, origin);
      this.#reportForeign(origin, task.returnId);
      return;
    }
    const args: WireArg[] = [];
    const deps: string[] = [];
    for (const arg of task.args) {
      if ('value' in arg) {
        args.push({ value: arg.value });
        continue;
      }
      if (!isValidId(arg.ref)) continue;
      if (this.store.status(arg.ref).state === 'freed') {
        if (arg.bytes) this.store.register(arg.ref, { size: arg.size, bytes: arg.bytes, contains: [] });
        else {
          this.store.expect(arg.ref);
          fetch(arg.ref, arg.size);
        }
      }
      args.push({ ref: arg.ref });
      deps.push(arg.ref);
    }
    this.store.expect(task.returnId);
    // Held for the origin until it has its own copy (see releaseKept).
    this.store.hold(task.returnId);
    this.#keptFor.set(task.returnId, origin);
    const fn: FunctionSource = { source: task.fn.source, hash: task.fn.hash, name: task.fn.name };
    this.store.onSettled(task.returnId, () => this.#reportForeign(origin, task.returnId));
    this.#enqueue(task.returnId, fn, args, deps, [], task.options, 'local');
  }

  /** Task results kept for the node that submitted them: returnId -> origin. */
  readonly #keptFor = new Map<string, string>();

  #reportForeign(origin: string, returnId: string): void {
    const status = this.store.status(returnId);
    let result: ClusterResult;
    if (status.state === 'ready') {
      const contains = status.contains.map((id) => ({ id, owner: this.store.sessionId }));
      result = status.bytes ? { ok: true, size: status.size, bytes: status.bytes, contains } : { ok: true, size: status.size, contains };
    } else {
      result = { ok: false, failure: toWireFailure(status.state === 'failed' ? status.error : new ObjectFreedError(returnId)) };
    }
    this.#cluster?.finished(origin, returnId, result);
    // A result (and what it refers to) stays until the origin has its copy and says so.
    if (status.state !== 'ready') this.releaseKept([returnId]);
  }

  /** The origin has its copy of these results (or left the cluster): stop keeping them. */
  releaseKept(ids: readonly string[]): void {
    for (const id of ids) {
      if (!this.#keptFor.delete(id)) continue;
      this.store.release(id);
    }
  }

  /**
   * Stops the tasks the head sent here, and drops the results kept, for which `match(returnId,
   * origin)` holds: their submitter cancelled them or left, or the head is gone (all of them).
   */
  dropForeign(match: (returnId: string, origin: string) => boolean = () => true): void {
    const ids = [...this.#keptFor].filter(([id, origin]) => match(id, origin)).map(([id]) => id);
    for (const id of ids) this.#cancel(id);
    this.releaseKept(ids);
  }

  /** A task this node spilled ended elsewhere; `result` is its value, already in this store if a segment. */
  finishSpilled(returnId: string, result: { size: number; bytes?: Uint8Array; contains: readonly string[] }): boolean {
    const task = this.#tasks.get(returnId);
    if (!task || task.state !== 'spilled') return false;
    this.#succeed(task, result);
    return true;
  }

  /** A task this node spilled failed elsewhere (or could not be placed). */
  failSpilled(returnId: string, error: Error): void {
    const task = this.#tasks.get(returnId);
    if (task && task.state === 'spilled') this.#fail(task, error);
  }

  /** The head found no room elsewhere: run the spilled task here after all. */
  declined(returnId: string): void {
    const task = this.#tasks.get(returnId);
    if (!task || task.state !== 'spilled') return;
    if (task.placement === 'elsewhere') {
      this.#fail(task, new InfeasibleTaskError(task.fn.name, 'no node of the cluster offers what it needs'));
      return;
    }
    task.placement = 'local';
    task.state = 'ready';
    this.#ready.unshift([task]);
    this.#schedule();
  }

  /**
   * The connection to the head dropped: tasks this node spilled may never report back. Each runs
   * here instead if this node can ever run it (it may then run twice, like any retry), else fails.
   */
  reclaimSpilled(): void {
    for (const task of [...this.#tasks.values()]) {
      if (task.state !== 'spilled') continue;
      if (task.placement === 'elsewhere') {
        this.#fail(
          task,
          new ShoalError(
            'ERR_HEAD_LOST',
            `Task ${task.fn.name} was placed on another node by the head, and the connection to the head was lost. ` +
              'Submit it again once the head is back.',
          ),
        );
      } else {
        this.declined(task.returnId);
      }
    }
  }

  /** Hands a task to the head to run elsewhere. */
  #spill(task: Task): void {
    const args: ClusterArg[] = task.args.map((arg): ClusterArg => {
      if ('value' in arg) return { value: arg.value };
      const status = this.store.status(arg.ref);
      const size = status.state === 'ready' ? status.size : 0;
      const bytes = status.state === 'ready' ? status.bytes : undefined;
      return bytes ? { ref: arg.ref, owner: this.store.sessionId, size, bytes } : { ref: arg.ref, owner: this.store.sessionId, size };
    });
    task.state = 'spilled';
    this.#cluster!.spill(task, args);
  }

  // ---- Runtime: objects -------------------------------------------------------------------

  put<T>(value: T): ObjectRef<T> {
    return this.store.put(value);
  }

  create(kind: TypedArrayKind | number, length?: number): ObjectWriter<ArrayBufferView> {
    return typeof kind === 'number' ? this.store.create(kind) : this.store.create(kind, length ?? Number.NaN);
  }

  get<T>(ref: ObjectRef<T>): Promise<T> {
    return this.store.get(ref);
  }

  getSync<T>(ref: ObjectRef<T>): T {
    return this.store.getSync(ref);
  }

  free(ref: ObjectRef): boolean {
    return this.store.free(ref);
  }

  stats(): StoreStats {
    return this.store.stats();
  }

  // ---- Runtime: tasks ---------------------------------------------------------------------

  submit(fn: FunctionSource, args: readonly unknown[], options: ResolvedRemoteOptions): ObjectRef {
    if (this.#state !== 'running') throw new RuntimeShutdownError(`Cannot submit task ${fn.name}`);
    const built = buildArgs(args, this.store.options.inlineThreshold, (encoded) => this.store.putEncoded(encoded));
    const returnId = newObjectId();
    this.store.expect(returnId);
    const ref = new ObjectRef(returnId, this.store.sessionId);
    this.#enqueue(returnId, fn, built.args, built.deps, built.contains, options, 'any', ownersOf(built.args));
    return ref;
  }

  wait(refs: readonly ObjectRef[], numReturns: number, timeoutMs: number | null): Promise<WaitResult> {
    return this.#waitFor(
      refs.map((ref) => ref.id),
      numReturns,
      timeoutMs,
    ).then((readyIds) => {
      const ready = new Set(readyIds);
      return {
        ready: refs.filter((ref) => ready.has(ref.id)),
        pending: refs.filter((ref) => !ready.has(ref.id)),
      };
    });
  }

  cancel(ref: ObjectRef): void {
    this.#cancel(ref.id);
  }

  async putNamed<T>(name: string, value: T | ObjectRef<T>): Promise<NamedVersion<T>> {
    checkObjectName(name);
    const ref = value instanceof ObjectRef ? (value as ObjectRef<T>) : this.put(value);
    const version = this.#bind(name, ref.id);
    return { name, version, ref };
  }

  async getNamed<T>(name: string): Promise<{ version: NamedVersion<T>; value: T }> {
    checkObjectName(name);
    const binding = this.#names.get(name);
    if (!binding) throw missingName(name);
    const ref = new ObjectRef<T>(binding.id, this.store.sessionId);
    return { version: { name, version: binding.version, ref }, value: await this.get(ref) };
  }

  watch<T>(name: string): AsyncIterableIterator<NamedVersion<T>> {
    checkObjectName(name);
    const sessionId = this.store.sessionId;
    return watchIterator<T>(name, (push) => {
      const current = this.#names.get(name);
      if (current) push({ name, version: current.version, ref: new ObjectRef<T>(current.id, sessionId) });
      const listener = (binding: { id: string; version: number }) =>
        push({ name, version: binding.version, ref: new ObjectRef<T>(binding.id, sessionId) });
      return this.#addWatcher(name, listener);
    });
  }

  /** Binds `name` to object `id` (holding it) and releases the object it was bound to. */
  #bind(name: string, id: string): number {
    if (!this.store.hold(id)) throw new ObjectFreedError(id, ` before it could be published as "${name}"`);
    const previous = this.#names.get(name);
    const binding = { id, version: (previous?.version ?? 0) + 1 };
    this.#names.set(name, binding);
    // Readers in the middle of a request keep the old version through their own refs and views.
    if (previous) this.store.release(previous.id);
    for (const listener of [...(this.#watchers.get(name) ?? [])]) listener(binding);
    return binding.version;
  }

  #addWatcher(name: string, listener: (binding: { id: string; version: number }) => void): () => void {
    let listeners = this.#watchers.get(name);
    if (!listeners) this.#watchers.set(name, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.#watchers.delete(name);
    };
  }

  /**
   * Stops the node: pending tasks fail with RuntimeShutdownError, workers are killed, the socket
   * closes and the session directory is removed. Idempotent.
   */
  async shutdown(): Promise<void> {
    if (this.#state !== 'running') {
      while (this.#state !== 'closed') await new Promise((resolve) => setTimeout(resolve, 5));
      return;
    }
    this.#state = 'closing';
    // Until every worker is gone, its handles must keep the process alive.
    this.#keepAlive(true);
    for (const task of [...this.#tasks.values()]) {
      this.#fail(task, new RuntimeShutdownError(`Task ${task.fn.name} did not finish`));
    }
    const exits = [...this.#workers].map((worker) => {
      worker.send({ type: 'shutdown' });
      worker.connection?.flush();
      const force = setTimeout(() => worker.kill(), 500);
      return worker.exited.finally(() => clearTimeout(force));
    });
    await Promise.all(exits);
    for (const client of this.#clients) client.connection?.destroy();
    this.#clients.clear();
    for (const { id } of this.#names.values()) this.store.release(id);
    this.#names.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    process.off('exit', this.#killWorkersOnExit);
    this.store.close();
    this.#state = 'closed';
    debug('node %s shut down', this.store.sessionId);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  // ---- scheduling -------------------------------------------------------------------------

  #enqueue(
    returnId: string,
    fn: FunctionSource,
    args: readonly WireArg[],
    deps: readonly string[],
    contains: readonly string[],
    options: ResolvedRemoteOptions,
    placement: Task['placement'] = 'any',
    owners?: ReadonlyMap<string, string>,
  ): void {
    const demand = demandOf(options);
    const task: Task = {
      id: this.#nextTaskId++,
      returnId,
      fn,
      args,
      deps,
      contains,
      options,
      demand,
      state: 'waiting',
      unsettled: deps.length,
      attempts: 0,
      worker: undefined,
      timer: undefined,
      ending: undefined,
      recalling: false,
      placement,
    };
    this.#tasks.set(returnId, task);
    this.#keepAlive(true);
    // The task holds what it will read: its arguments can't be freed under it.
    for (const id of contains) this.store.hold(id);
    // In a cluster, an argument made by another node is fetched here (unless the task spills).
    if (this.#cluster && owners) {
      for (const id of deps) {
        const owner = owners.get(id);
        if (owner === undefined || owner === this.store.sessionId || this.store.status(id).state !== 'freed') continue;
        this.store.expect(id);
        this.#claimPendingHolds(id);
        this.#cluster.fetch(id, owner);
      }
    }
    const missing = deps.filter((id) => !this.store.hold(id));
    const fit = place(demand, this.#available, this.#total);
    if (fit.kind === 'infeasible') {
      if (!this.#cluster || placement === 'local') {
        this.#fail(task, new InfeasibleTaskError(fn.name, fit.reason));
        return;
      }
      task.placement = 'elsewhere';
    }
    if (missing.length > 0) {
      this.#fail(task, new ObjectFreedError(missing[0]!, ` before task ${fn.name} that takes it could start`));
      return;
    }
    if (deps.length === 0) {
      this.#makeReady(task);
      return;
    }
    for (const id of deps) {
      this.store.onSettled(id, () => {
        task.unsettled -= 1;
        if (task.unsettled === 0 && task.state === 'waiting') this.#makeReady(task);
      });
    }
  }

  #makeReady(task: Task): void {
    for (const id of task.deps) {
      const status = this.store.status(id);
      if (status.state === 'failed') {
        // Dependents fail with the very error of the task they depend on.
        this.#fail(task, status.error);
        return;
      }
      if (status.state === 'freed') {
        this.#fail(task, new ObjectFreedError(id, ` before task ${task.fn.name} that takes it could start`));
        return;
      }
    }
    if (task.placement === 'elsewhere') {
      this.#spill(task);
      return;
    }
    task.state = 'ready';
    this.#ready.push(task);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#state !== 'running') return;
    for (this.#ready.dropStale(); this.#ready.length > 0; this.#ready.dropStale()) {
      const next = this.#ready.at(0)!;
      if (this.#cluster && next.placement === 'any' && !this.#startable(next) && this.#cluster.hasRoomElsewhere(next.demand)) {
        // No room here, room on another node: the head places it (on the node holding most of
        // its arguments among those with room).
        this.#ready.shift();
        this.#spill(next);
        continue;
      }
      const worker = this.#idleWorker();
      if (!worker) {
        // Every worker is busy. If the head could run anyway, workers are blocked waiting on
        // objects and lent their CPU back (or tasks take fractions of a CPU): start another and
        // let the task wait for it. Otherwise queue it behind a running task.
        if (place(this.#ready.at(0)!.demand, this.#available, this.#total).kind === 'placed') {
          this.#maybeSpawnExtraWorker();
          return;
        }
        if (!this.#pipeline()) return;
        continue;
      }
      // First-come first-served, but a head that does not fit yet must not hold back smaller
      // tasks behind it: look a little further.
      const limit = Math.min(this.#ready.length, SCHEDULING_LOOKAHEAD);
      let index = 0;
      while (index < limit && !this.#startable(this.#ready.at(index)!)) index += 1;
      if (index === limit) return;
      this.#dispatch(this.#ready.removeAt(index)!, worker);
    }
    if (this.#idleWorker()) this.#steal();
  }

  /**
   * A worker is idle and nothing is ready: take back tasks queued behind running ones (the
   * running task may be slow), so they start on the idle worker instead of waiting.
   */
  #steal(): void {
    let busiest: WorkerHandle | undefined;
    let waiting = 0;
    for (const worker of this.#workers) {
      const queued = worker.inflight.filter((task) => task.state === 'queued' && !task.recalling).length;
      if (queued > waiting) {
        busiest = worker;
        waiting = queued;
      }
    }
    if (!busiest) return;
    const taken = busiest.inflight.filter((task) => task.state === 'queued' && !task.recalling).slice(-Math.ceil(waiting / 2));
    this.#recall(busiest, taken);
  }

  /** Asks a worker to give back queued tasks it has not started; 'recalled' answers. */
  #recall(worker: Peer, tasks: readonly Task[]): void {
    const ids: number[] = [];
    for (const task of tasks) {
      if (task.state !== 'queued' || task.recalling) continue;
      task.recalling = true;
      ids.push(task.id);
    }
    if (ids.length > 0) worker.send({ type: 'recall', taskIds: ids });
  }

  /**
   * Queues the head task behind the running one on the least loaded busy worker whose lease
   * matches its demand, so a worker never waits a round trip between two small tasks. Tasks with
   * a timeout are never queued (their clock starts when they start).
   */
  #startable(task: Task): boolean {
    return task.state === 'ready' && place(task.demand, this.#available, this.#total).kind === 'placed';
  }

  #pipeline(): boolean {
    const task = this.#ready.at(0)!;
    if (task.options.timeoutMs !== null) return false;
    let best: WorkerHandle | undefined;
    for (const worker of this.#workers) {
      if (worker.state !== 'busy' || worker.blockedRequests > 0 || worker.inflight.length >= PIPELINE_DEPTH) continue;
      if (!sameDemand(worker.lease, task.demand)) continue;
      if (!best || worker.inflight.length < best.inflight.length) best = worker;
    }
    if (!best) return false;
    this.#ready.shift();
    this.#send(task, best);
    return true;
  }

  #idleWorker(): WorkerHandle | undefined {
    for (const worker of this.#workers) {
      if (worker.state === 'idle') return worker;
    }
    return undefined;
  }

  #maybeSpawnExtraWorker(): void {
    // One more worker at a time.
    let alive = 0;
    for (const worker of this.#workers) {
      if (worker.state === 'starting') return;
      if (worker.state !== 'dead') alive += 1;
    }
    if (alive < this.options.maxWorkers) this.#spawnWorker();
  }

  /** Gives an idle worker a lease on the task's resources and starts the task on it. */
  #dispatch(task: Task, worker: WorkerHandle): void {
    acquire(this.#available, task.demand);
    worker.lease = task.demand;
    if (worker.idleTimer) clearTimeout(worker.idleTimer);
    worker.idleTimer = undefined;
    worker.state = 'busy';
    this.#send(task, worker);
  }

  /** Sends the task to the worker's queue; it starts now if the worker has nothing else. */
  #send(task: Task, worker: WorkerHandle): void {
    task.state = 'queued';
    task.worker = worker;
    worker.inflight.push(task);
    this.#running.set(task.id, task);
    const fn = worker.functions.has(task.fn.hash)
      ? { hash: task.fn.hash, name: task.fn.name }
      : { hash: task.fn.hash, name: task.fn.name, source: task.fn.source };
    worker.functions.add(task.fn.hash);
    const args = task.args.map((arg): WireArg => ('ref' in arg ? { ref: arg.ref, location: this.#locate(arg.ref, worker) } : arg));
    worker.send({ type: 'execute', taskId: task.id, returnId: task.returnId, fn, args });
    if (worker.inflight.length === 1) this.#start(task);
  }

  /** The task is at the head of its worker's queue: it runs now. */
  #start(task: Task): void {
    task.state = 'running';
    task.attempts += 1;
    const worker = task.worker!;
    if (task.options.timeoutMs !== null) {
      task.timer = setTimeout(() => {
        task.ending = 'timeout';
        worker.kill();
      }, task.options.timeoutMs);
    }
  }

  /**
   * Takes the task off its worker. If it was running there, the worker moves on to its next
   * queued task, or gives its lease back and becomes idle.
   */
  #detach(task: Task): void {
    const worker = task.worker;
    if (task.timer) clearTimeout(task.timer);
    task.timer = undefined;
    this.#running.delete(task.id);
    task.worker = undefined;
    if (!worker) return;
    const index = worker.inflight.indexOf(task);
    if (index < 0) return;
    worker.inflight.splice(index, 1);
    if (index !== 0 || worker.state === 'dead') return;
    this.#unlend(worker);
    if (worker.inflight.length > 0) this.#start(worker.inflight[0]!);
    else {
      this.#endLease(worker);
      this.#becomeIdle(worker);
    }
  }

  /** The worker's running task stopped waiting (or ended): take back the CPU it lent. */
  #unlend(worker: WorkerHandle): void {
    if (worker.blockedRequests > 0 && worker.lease) this.#available.CPU! -= worker.lease.CPU ?? 0;
    worker.blockedRequests = 0;
  }

  #endLease(worker: WorkerHandle): void {
    this.#unlend(worker);
    if (worker.lease) giveBack(this.#available, worker.lease);
    worker.lease = undefined;
  }

  #becomeIdle(worker: WorkerHandle): void {
    worker.state = 'idle';
    if (this.#workers.size > Math.ceil(this.options.numCpus)) {
      worker.idleTimer = setTimeout(() => {
        if (worker.state === 'idle') worker.kill();
      }, EXTRA_WORKER_IDLE_MS);
      worker.idleTimer.unref();
    }
  }

  /** The task is over for good: its holds go, its return object settles as failed. */
  #fail(task: Task, error: Error): void {
    if (task.state === 'finished') return;
    // A task still in the ready queue is skipped there once finished.
    this.#detach(task);
    task.state = 'finished';
    this.#tasks.delete(task.returnId);
    if (this.#tasks.size === 0 && this.#state === 'running') this.#keepAlive(false);
    this.store.fail(task.returnId, error);
    this.#dropHolds(task);
  }

  #succeed(task: Task, result: { size: number; bytes?: Uint8Array; contains: readonly string[] }): void {
    if (task.ending === 'cancel') {
      this.#discardResult(task, result);
      this.#fail(task, new TaskCancelledError(task.fn.name));
      return;
    }
    this.#detach(task);
    task.state = 'finished';
    this.#tasks.delete(task.returnId);
    if (this.#tasks.size === 0 && this.#state === 'running') this.#keepAlive(false);
    if (this.store.status(task.returnId).state === 'pending') {
      this.store.register(task.returnId, { size: result.size, bytes: result.bytes, contains: result.contains });
    } else {
      this.#discardResult(task, result);
    }
    this.#dropHolds(task);
  }

  /** A result nobody can want (cancelled or freed meanwhile): remove the segment it wrote. */
  #discardResult(task: Task, result: { bytes?: Uint8Array }): void {
    if (!result.bytes) this.store.discardUnclaimed(task.returnId);
  }

  #dropHolds(task: Task): void {
    for (const id of task.deps) this.store.release(id);
    for (const id of task.contains) this.store.release(id);
  }

  /** Puts tasks back at the front of the ready queue, in order. */
  #requeue(tasks: Task[]): void {
    for (const task of tasks) {
      this.#detach(task);
      task.state = 'ready';
      task.recalling = false;
    }
    this.#ready.unshift(tasks);
  }

  #retryOrFail(task: Task, error: Error): void {
    if (task.attempts <= task.options.maxRetries && this.#state === 'running') {
      debug('retrying task %s (attempt %d): %s', task.fn.name, task.attempts + 1, error.message);
      this.#requeue([task]);
      this.#schedule();
      return;
    }
    this.#fail(task, error);
  }

  #cancel(returnId: string): void {
    const task = this.#tasks.get(returnId);
    if (!task || task.state === 'finished') return;
    if (task.state === 'spilled') {
      this.#cluster?.cancel(returnId);
      this.#fail(task, new TaskCancelledError(task.fn.name));
      return;
    }
    if (task.worker && (task.state === 'running' || task.state === 'queued')) {
      task.ending = 'cancel';
      // A queued task is recalled (and failed when the worker gives it back); a running one
      // is stopped the only way a synchronous function can be: by killing its worker.
      if (task.state === 'running') task.worker.kill();
      else if (task.recalling) {
        // Already on its way back: 'recalled' fails it as cancelled.
      } else this.#recall(task.worker, [task]);
      return;
    }
    this.#fail(task, new TaskCancelledError(task.fn.name));
    this.#schedule();
  }

  #waitFor(ids: readonly string[], numReturns: number, timeoutMs: number | null): Promise<string[]> {
    const want = Math.min(numReturns, ids.length);
    return new Promise((resolve) => {
      const settled = new Set<string>();
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        resolve(ids.filter((id) => settled.has(id)));
      };
      for (const id of ids) {
        this.store.onSettled(id, () => {
          settled.add(id);
          if (settled.size >= want) finish();
        });
      }
      if (settled.size >= want) finish();
      else if (timeoutMs !== null) timer = setTimeout(finish, timeoutMs);
    });
  }

  /** Peers that were told where a segment object is (they may cache a mapping of it). */
  readonly #mappedBy = new Map<string, Set<Peer>>();

  /** A segment object was freed: peers that may have it mapped drop their cached mapping. */
  #forgetEverywhere(id: string): void {
    const peers = this.#mappedBy.get(id);
    if (!peers) return;
    this.#mappedBy.delete(id);
    for (const peer of peers) peer.send({ type: 'forget', ids: [id] });
  }

  #locate(id: string, peer?: Peer): ObjectLocation {
    const status = this.store.status(id);
    switch (status.state) {
      case 'ready':
        if (status.bytes) return { kind: 'inline', bytes: status.bytes };
        // A remote driver cannot map this machine's segments: it gets the bytes.
        if (peer?.remote) {
          if (status.size > REMOTE_MAX_FRAME_BYTES - (1 << 20)) {
            const tooLarge = new ShoalError(
              'ERR_OBJECT_TOO_LARGE',
              `Object ${id} is ${formatBytes(status.size)}: a program on a machine without a node receives each object ` +
                'whole, up to 1 GiB. Read it in a task, or run the program on a machine with a node.',
            );
            return { kind: 'error', error: encodeError(tooLarge) };
          }
          return { kind: 'inline', bytes: this.store.segmentBytes(id) };
        }
        if (peer) {
          let peers = this.#mappedBy.get(id);
          if (!peers) this.#mappedBy.set(id, (peers = new Set()));
          peers.add(peer);
        }
        return { kind: 'segment', size: status.size };
      case 'failed':
        return { kind: 'error', error: encodeError(status.error) };
      default:
        return { kind: 'freed' };
    }
  }

  // ---- workers ----------------------------------------------------------------------------

  /**
   * While tasks are pending the node's server, sockets and worker processes keep the process
   * alive; otherwise they do not, so a program that is done exits (and its 'exit' hook kills the
   * workers and removes the session directory) without having to call shutdown().
   */
  #keepAlive(alive: boolean): void {
    if (alive === this.#alive) return;
    this.#alive = alive;
    const method = alive ? 'ref' : 'unref';
    this.#server[method]();
    for (const worker of this.#workers) worker.keepAlive(alive);
  }

  #spawnWorker(): void {
    const worker = new WorkerHandle(
      {
        socketPath: this.socketPath,
        sessionId: this.store.sessionId,
        sessionDirectory: this.store.directory,
        inlineThreshold: this.store.options.inlineThreshold,
      },
      (dead, code, signal) => this.#onWorkerExit(dead, code, signal),
    );
    this.#workers.add(worker);
    this.#byPid.set(worker.pid, worker);
    worker.keepAlive(this.#alive);
    debug('started worker %d', worker.pid);
  }

  /**
   * Serves a program that joined the cluster from a machine without a node, over `stream` (a
   * WebSocket whose token the head checked). It cannot share this machine's memory: its puts
   * arrive as bytes (written into segments here) and its gets are answered with bytes.
   */
  acceptRemote(stream: MessageStream): void {
    this.#accept(stream, true);
  }

  #accept(socket: MessageStream, remote = false): void {
    let peer: Peer | undefined;
    const connection = new Connection<WorkerToNode, NodeToWorker>(socket, {
      decode: decodeWorkerMessage,
      message: (message) => {
        if (!peer) {
          if (message.type === 'attach' && Number.isSafeInteger(message.pid)) {
            // Any process of this user may attach: the socket lives in a 0700 directory.
            const client = new ClientHandle(message.pid, connection, remote);
            peer = client;
            this.#clients.add(client);
            connection.socket.unref();
            client.send({
              type: 'welcome',
              sessionId: this.store.sessionId,
              directory: this.store.directory,
              inlineThreshold: this.store.options.inlineThreshold,
            });
            return;
          }
          // Otherwise the first message must name one of this node's own worker processes.
          const claimed = message.type === 'ready' && !remote ? this.#byPid.get(message.pid) : undefined;
          if (!claimed || claimed.connection) {
            connection.destroy(new Error('connection from an unknown process'));
            return;
          }
          peer = claimed;
          claimed.connection = connection;
          claimed.keepAlive(this.#alive);
          claimed.state = 'idle';
          this.#schedule();
          return;
        }
        this.#onPeerMessage(peer, message);
      },
      close: (error) => {
        if (error) debug('connection of process %d closed: %s', peer?.pid, error.message);
        if (peer instanceof WorkerHandle) {
          // A worker without its connection is useless: make sure it dies; 'exit' cleans up.
          peer.kill();
        } else if (peer) {
          this.#clients.delete(peer as ClientHandle);
          this.#forgetPeer(peer);
        }
      },
    }, remote ? REMOTE_MAX_FRAME_BYTES : undefined);
  }

  /** Counts a ref held by another process (released with it if it goes away). */
  #holdFor(peer: Peer, id: string): boolean {
    if (!this.store.hold(id)) return false;
    peer.holds.set(id, (peer.holds.get(id) ?? 0) + 1);
    return true;
  }

  /** Object `id` now exists here: peers that said they hold a ref to it hold it. */
  #claimPendingHolds(id: string): void {
    for (const peer of [...this.#workers, ...this.#clients]) {
      if (peer.pendingHolds.delete(id)) this.#holdFor(peer, id);
    }
  }

  /** Releases what a peer that went away held: its refs and its watches. */
  #forgetPeer(peer: Peer): void {
    for (const [id, count] of peer.holds) for (let i = 0; i < count; i++) this.store.release(id);
    peer.holds.clear();
    for (const name of peer.watching) this.#unwatch(peer, name);
    for (const [id, peers] of this.#mappedBy) {
      peers.delete(peer);
      if (peers.size === 0) this.#mappedBy.delete(id);
    }
  }

  readonly #peerWatches = new WeakMap<Peer, Map<string, () => void>>();

  #unwatch(peer: Peer, name: string): void {
    peer.watching.delete(name);
    const stops = this.#peerWatches.get(peer);
    stops?.get(name)?.();
    stops?.delete(name);
  }

  #onPeerMessage(peer: Peer, message: WorkerToNode): void {
    // Task results only ever come from workers.
    if (peer instanceof WorkerHandle) {
      this.#onWorkerMessage(peer, message);
      return;
    }
    this.#onCommonMessage(peer, message);
  }

  #onWorkerMessage(worker: WorkerHandle, message: WorkerToNode): void {
    switch (message.type) {
      case 'done': {
        const task = this.#running.get(message.taskId);
        if (task && task.worker === worker) this.#succeed(task, message.result);
        this.#schedule();
        return;
      }
      case 'failed': {
        const task = this.#running.get(message.taskId);
        if (!task || task.worker !== worker) return;
        const thrown = decodeThrown(message.error);
        const retry = task.options.retryExceptions;
        const retryable =
          retry === true || (Array.isArray(retry) && thrown instanceof Error && retry.includes(thrown.name));
        const error = task.ending === 'cancel' ? new TaskCancelledError(task.fn.name) : new TaskError(task.fn.name, thrown);
        if (retryable && task.ending !== 'cancel') this.#retryOrFail(task, error);
        else this.#fail(task, error);
        this.#schedule();
        return;
      }
      case 'recalled': {
        const back: Task[] = [];
        for (const id of message.taskIds) {
          const task = this.#running.get(id);
          if (!task || task.worker !== worker || task.state !== 'queued') continue;
          if (task.ending === 'cancel') this.#fail(task, new TaskCancelledError(task.fn.name));
          else back.push(task);
        }
        this.#requeue(back);
        this.#schedule();
        return;
      }
      default:
        this.#onCommonMessage(worker, message);
    }
  }

  /** Messages any peer may send: objects, refs, nested tasks, names. */
  #onCommonMessage(worker: Peer, message: WorkerToNode): void {
    switch (message.type) {
      case 'put':
        if (!isValidId(message.id) || this.store.status(message.id).state !== 'freed') return;
        try {
          if (message.payload.bytes && message.payload.size >= this.store.options.inlineThreshold) {
            // A remote driver's large object: into a segment, as if it had written it here.
            this.store.registerBytes(message.id, message.payload.bytes, message.payload.contains);
          } else {
            this.store.register(message.id, message.payload);
          }
        } catch (error) {
          // No room (or /dev/shm full): the object exists as that failure, for whoever gets it.
          this.store.expect(message.id);
          this.#holdFor(worker, message.id);
          this.store.fail(message.id, error as Error);
          return;
        }
        // The putter holds a ref to it from now on (counted here, so it is never unheld).
        this.#holdFor(worker, message.id);
        return;
      case 'submit':
        this.#submitFromWorker(worker, message.task);
        return;
      case 'resolve': {
        if (this.#cluster && Array.isArray(message.owners)) {
          // Objects made by other nodes are fetched here first, and held for the asker.
          message.ids.forEach((id, i) => {
            const owner = message.owners![i];
            if (typeof owner !== 'string' || owner === this.store.sessionId || this.store.status(id).state !== 'freed') return;
            this.store.expect(id);
            // The asker holds a ref to it: its `refs` hold may have come already (pending), or
            // may come later — then it is the one counted here, not a second.
            this.#claimPendingHolds(id);
            if (!worker.holds.has(id)) {
              this.#holdFor(worker, id);
              worker.heldAhead.add(id);
            }
            this.#cluster!.fetch(id, owner);
          });
        }
        this.#whileBlocked(worker, message.ids, this.#waitFor(message.ids, message.ids.length, null), () => {
          const locations: Record<string, ObjectLocation> = {};
          for (const id of message.ids) locations[id] = this.#locate(id, worker);
          worker.send({ type: 'resolved', requestId: message.requestId, locations });
        });
        return;
      }
      case 'wait':
        this.#whileBlocked(worker, message.ids, this.#waitFor(message.ids, message.numReturns, message.timeoutMs), (ready) =>
          worker.send({ type: 'waited', requestId: message.requestId, ready }),
        );
        return;
      case 'cancel':
        this.#cancel(message.id);
        return;
      case 'free':
        for (const id of message.ids) this.store.freeId(id);
        return;
      case 'refs':
        for (const id of message.hold) {
          // Counted already, when this peer's get made this node fetch it.
          if (worker.heldAhead.delete(id)) continue;
          // A ref to an object this node does not have (yet): counted if it is fetched here.
          if (!this.#holdFor(worker, id) && isValidId(id)) worker.pendingHolds.add(id);
        }
        for (const id of message.release) {
          const count = worker.holds.get(id);
          if (count === undefined) {
            worker.pendingHolds.delete(id);
            continue;
          }
          if (count <= 1) worker.holds.delete(id);
          else worker.holds.set(id, count - 1);
          this.store.release(id);
        }
        return;
      case 'bind': {
        let version = 0;
        let error: string | undefined;
        try {
          version = this.#bind(checkObjectName(message.name), message.id);
        } catch (cause) {
          error = (cause as Error).message;
        }
        worker.send(error === undefined ? { type: 'bound', requestId: message.requestId, version } : { type: 'bound', requestId: message.requestId, version, error });
        return;
      }
      case 'lookup': {
        const binding = typeof message.name === 'string' ? this.#names.get(message.name) : undefined;
        // Held for the asker until it drops its ref, so a replacement meanwhile cannot free it.
        if (binding) this.#holdFor(worker, binding.id);
        worker.send(
          binding
            ? { type: 'looked-up', requestId: message.requestId, id: binding.id, version: binding.version, location: this.#locate(binding.id, worker) }
            : { type: 'looked-up', requestId: message.requestId, id: null, version: 0 },
        );
        return;
      }
      case 'watch': {
        const name = message.name;
        if (typeof name !== 'string' || worker.watching.has(name)) return;
        worker.watching.add(name);
        const send = (binding: { id: string; version: number }) => {
          // Held for the watcher until it drops its ref: it may read the version a while later.
          this.#holdFor(worker, binding.id);
          worker.send({ type: 'named', name, id: binding.id, version: binding.version });
        };
        const current = this.#names.get(name);
        if (current) send(current);
        let stops = this.#peerWatches.get(worker);
        if (!stops) this.#peerWatches.set(worker, (stops = new Map()));
        stops.set(name, this.#addWatcher(name, send));
        return;
      }
      case 'unwatch':
        this.#unwatch(worker, message.name);
        return;
      default:
        return;
    }
  }

  /**
   * Runs `reply` when `settled` resolves. Meanwhile, if the worker's task is waiting on objects
   * that are not ready, its CPU is lent back so other tasks (often the ones it waits for) can run.
   */
  #whileBlocked<T>(worker: Peer, ids: readonly string[], settled: Promise<T>, reply: (value: T) => void): void {
    const task = worker.inflight[0];
    const blocks = task !== undefined && worker.lease !== undefined && ids.some((id) => this.store.status(id).state === 'pending');
    if (blocks && worker.blockedRequests++ === 0) {
      this.#available.CPU! += worker.lease!.CPU ?? 0;
      // Tasks queued behind a blocked one could be the very ones it waits for: take them back.
      this.#recall(worker, worker.inflight.slice(1));
      this.#schedule();
    }
    void settled.then((value) => {
      if (blocks && worker.inflight[0] === task && worker.blockedRequests > 0) {
        if (--worker.blockedRequests === 0) this.#available.CPU! -= worker.lease?.CPU ?? 0;
      }
      reply(value);
    });
  }

  #submitFromWorker(worker: Peer, wire: WireTask): void {
    if (!isValidId(wire.returnId) || this.#state !== 'running') return;
    this.store.expect(wire.returnId);
    // The submitter holds the result's ref from now on: counted here rather than by a later
    // `refs` message, which a fast task could otherwise beat (its result freed on arrival).
    this.#holdFor(worker, wire.returnId);
    const fn: FunctionSource = { source: wire.fn.source, hash: wire.fn.hash, name: wire.fn.name };
    worker.functions.add(fn.hash);
    const deps = wire.args.flatMap((arg) => ('ref' in arg ? [arg.ref] : []));
    this.#enqueue(wire.returnId, fn, wire.args, deps, wire.contains, wire.options, 'any', ownersOf(wire.args));
  }

  #onWorkerExit(worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    this.#workers.delete(worker);
    this.#byPid.delete(worker.pid);
    if (worker.idleTimer) clearTimeout(worker.idleTimer);
    debug('worker %d exited (code %s, signal %s)', worker.pid, code, signal);
    this.#forgetPeer(worker);
    const [task, ...queued] = worker.inflight;
    // Tasks queued behind the one that was running never started: they simply run elsewhere.
    this.#requeue(queued.filter((waiting) => waiting.ending !== 'cancel'));
    for (const waiting of queued) {
      if (waiting.ending === 'cancel') this.#fail(waiting, new TaskCancelledError(waiting.fn.name));
    }
    if (task && task.state === 'running') {
      if (task.ending === 'timeout') this.#fail(task, new TaskTimeoutError(task.fn.name, task.options.timeoutMs ?? 0));
      else if (task.ending === 'cancel') this.#fail(task, new TaskCancelledError(task.fn.name));
      else this.#retryOrFail(task, new WorkerCrashedError(task.fn.name, code, signal, task.attempts));
    }
    this.#endLease(worker);
    if (this.#state === 'running') {
      let alive = 0;
      for (const other of this.#workers) if (other.state !== 'dead') alive += 1;
      if (alive < Math.ceil(this.options.numCpus)) this.#spawnWorker();
      this.#schedule();
    }
  }
}

/** The owner of each ref argument that names one. */
function ownersOf(args: readonly WireArg[]): Map<string, string> {
  const owners = new Map<string, string>();
  for (const arg of args) if ('ref' in arg && typeof arg.owner === 'string') owners.set(arg.ref, arg.owner);
  return owners;
}

function missingName(name: string): ObjectNotFoundError {
  return new ObjectNotFoundError(name, `no object is published under the name "${name}"; publish one with store.putNamed().`);
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
