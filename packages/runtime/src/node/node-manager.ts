import { debuglog } from 'node:util';
import {
  ActorHandle,
  ActorNotFoundError,
  ACTOR_INFO,
  ObjectRef,
  RuntimeShutdownError,
  checkObjectName,
  newObjectId,
  type WireArg,
  type WireTask,
  type NodeObject,
  type ObjectHolder,
} from '@shoal/protocol';
import { ObjectStore, STORE_OPTION_KEYS, nodeSocketPath, type ObjectWriter, type StoreOptions, type StoreStats, type TypedArrayKind } from '@shoal/store';
import type { FunctionSource } from '../api/function-source.js';
import { splitSettled, type NamedVersion, type Runtime, type WaitResult } from '../api/runtime.js';
import { buildArgs } from '../api/task-args.js';
import { watchIterator } from '../api/watch-iterator.js';
import { NODE_OPTION_KEYS, resolveNodeOptions, type NodeOptions, type ResolvedActorOptions, type ResolvedNodeOptions, type ResolvedRemoteOptions } from '../options.js';
import { LocalScheduler } from '../scheduling/local-scheduler.js';
import type { MessageStream } from '../transport/connection.js';
import { WorkerHandle } from '../workers/worker-handle.js';
import { WorkerPool } from '../workers/worker-pool.js';
import { ActorService } from './actors.js';
import { ClusterPort } from './cluster-port.js';
import { StreamService } from './streams.js';
import { nodeLoad, type NodeLoad } from './node-load.js';
import { descriptorUsage } from './descriptors.js';
import { NameRegistry } from './names.js';
import { ObjectService } from './object-service.js';
import { ClientHandle, type Peer } from './peer.js';
import { CollectionRound } from './collection-round.js';
import { PeerRouter } from './peer-router.js';
import { PeerServer } from './peer-server.js';
import { RefHolds } from './ref-holds.js';
import { TaskOutput } from './task-output.js';
import { NodeMetrics } from './node-metrics.js';

export type { ClusterHooks } from './cluster-port.js';

const debug = debuglog('shoal:node');

/** How long closing waits for workers to exit on their own before killing them. */
const WORKER_EXIT_GRACE_MS = 500;

/** Options of a node: its object store and its resources. */
export interface NodeManagerOptions extends StoreOptions, NodeOptions {}

/** The names of every option a {@link NodeManager} takes: the node's and its store's. */
export const NODE_MANAGER_OPTION_KEYS: readonly string[] = [...NODE_OPTION_KEYS, ...STORE_OPTION_KEYS];

/** Lifecycle of a node: made, starting (listening, workers starting), running, closing, closed. */
export type NodeState = 'idle' | 'starting' | 'running' | 'closing' | 'closed';

/**
 * A node: the object store of this machine's session, the worker processes, and the local
 * scheduler that runs tasks on them — the composition root of node/, scheduling/ and workers/.
 * In the embedded default it lives inside the driver process, which is why it implements
 * {@link Runtime} directly.
 *
 * Workers connect over a unix socket in the session directory and speak the protocol of
 * `@shoal/protocol`'s worker-protocol.ts. They read and write segments themselves; only small
 * messages go through the socket.
 *
 * @example
 * ```ts
 * await using node = new NodeManager({ numCpus: 2 });
 * await node.start();
 * const ref = node.submit(functionSource((a: number) => a * 2), [21], resolveRemoteOptions({}));
 * console.log(await node.get(ref)); // 42
 * ```
 */
export class NodeManager implements Runtime {
  readonly kind = 'driver' as const;
  readonly store: ObjectStore;
  readonly options: ResolvedNodeOptions;
  readonly socketPath: string;
  /** Where other processes of this machine attach: `init({ address })` or `SHOAL_ADDRESS`. */
  readonly address: string;
  /** The node's Prometheus metrics (served on its data port in a cluster). */
  readonly metrics: NodeMetrics;
  readonly #scheduler: LocalScheduler;
  readonly #pool: WorkerPool;
  readonly #server: PeerServer;
  readonly #router: PeerRouter;
  readonly #collection: CollectionRound;
  readonly #holds: RefHolds;
  readonly #objects: ObjectService;
  readonly #names: NameRegistry;
  readonly #actors: ActorService;
  readonly #streams: StreamService;
  /** Set while the node is about to stop keeping the process alive (see #updateAlive). */
  #letGo: NodeJS.Immediate | undefined;
  /** The node as its cluster agent sees it. */
  readonly cluster: ClusterPort;
  #state: NodeState = 'idle';
  #started: Promise<void> | undefined;
  #closed: Promise<void> | undefined;
  /** Whether the node's sockets and workers keep the process alive (only while tasks are pending). */
  #alive = false;

  constructor(options: NodeManagerOptions = {}) {
    const { numCpus, resources, maxWorkers, maxBlockedWorkers, logToDriver, runtimeEnv, ...storeOptions } = options;
    this.options = resolveNodeOptions(
      Object.fromEntries(Object.entries({ numCpus, resources, maxWorkers, maxBlockedWorkers, logToDriver, runtimeEnv }).filter(([, v]) => v !== undefined)),
    );
    this.store = new ObjectStore(storeOptions);
    this.socketPath = nodeSocketPath(this.store.directory);
    this.address = `unix:${this.socketPath}`;
    const store = this.store;
    this.#holds = new RefHolds(store, () => this.#peers());
    this.#objects = new ObjectService(store, this.#holds);
    this.#collection = new CollectionRound(() => this.#peers(), () => store.stats().usedBytes);
    this.#objects.collectPeers = () => this.#collection.run();
    // A spilled object waiting for room that other processes' stale mappings hold: not throttled.
    store.collectOthers = () => this.#collection.run(true);
    this.#names = new NameRegistry(store);
    this.store.on('delete', (id) => this.#objects.forgetEverywhere(id));
    // Mappings other processes no longer need keep objects from being spilled: they go in a round.
    this.store.on('pressure', () => void this.#collection.run());
    this.metrics = new NodeMetrics(store.sessionId, () => this.load(), () => this.#actors.live());
    this.#pool = new WorkerPool(
      { size: Math.ceil(this.options.numCpus) },
      {
        socketPath: this.socketPath,
        sessionId: store.sessionId,
        sessionDirectory: store.directory,
        inlineThreshold: store.options.inlineThreshold,
        forwardOutput: this.options.logToDriver,
        runtimeEnv: this.options.runtimeEnv,
      },
      (worker, code, signal) => this.#workerExited(worker, code, signal),
    );
    this.#scheduler = new LocalScheduler(
      { CPU: this.options.numCpus, ...this.options.resources },
      {
        objects: store,
        workers: () => this.#pool.workers(),
        spawnExtraWorker: (runtimeEnv) => this.#pool.spawnExtra(runtimeEnv),
        needWorkers: () => this.startWorkers(),
        locate: (id, worker, starting) => this.#objects.locateArgument(id, worker as WorkerHandle, starting),
        pin: (id) => this.#objects.pin(id),
        letGo: (id) => this.#objects.letGo(id),
        workerBusy: (worker) => this.#pool.busy(worker),
        workerIdle: (worker) => this.#pool.idle(worker),
        discardPartialResult: (returnId) => store.discardUnclaimed(returnId),
        // Inline too: room (and a lent file) granted to an earlier attempt is given back.
        discardResult: (returnId) => store.discardUnclaimed(returnId),
        keepAlive: () => this.#updateAlive(),
        cluster: () => this.cluster.spillTarget,
        taskEvents: this.metrics,
      },
      this.options,
    );
    this.#streams = new StreamService(store, {
      producer: (returnId) => {
        // A task only queued on a worker may still be recalled or stolen: it is cancelled instead.
        const task = this.#scheduler.tasks.get(returnId);
        const worker = task?.worker;
        if (task) return task.state === 'running' && worker ? { taskId: task.id, send: (message) => worker.send(message) } : undefined;
        return this.#actors.producerOf(returnId);
      },
      cancel: (returnId) => this.#cancel(returnId),
      pausedChanged: () => this.#updateAlive(),
    });
    this.#actors = new ActorService({
      store,
      objects: this.#objects,
      scheduler: this.#scheduler,
      streams: this.#streams,
      spawn: (exited, runtimeEnv) =>
        this.#pool.spawnDedicated((worker, code, signal) => {
          this.#forgetPeer(worker);
          exited(worker, code, signal);
        }, runtimeEnv),
      keepAlive: () => this.#updateAlive(),
    });
    const output = new TaskOutput({
      scheduler: this.#scheduler,
      actors: this.#actors,
      nodeId: store.sessionId,
      toOrigin: (origin, key, stream, text) => this.cluster.sendOutput(origin, key, stream, text),
    });
    this.cluster = new ClusterPort(
      { store, scheduler: this.#scheduler, objects: this.#objects, actors: this.#actors, output },
      () => this.#acceptsTasks(),
    );
    this.#router = new PeerRouter({
      store,
      scheduler: this.#scheduler,
      objects: this.#objects,
      holds: this.#holds,
      names: this.#names,
      collection: this.#collection,
      actors: this.#actors,
      streams: this.#streams,
      submit: (peer, task) => this.#submitFromPeer(peer, task),
      cancel: (id) => this.#cancel(id),
      fetchArguments: (args) => this.#fetchArguments(args),
      output: (worker, stream, text) => output.fromWorker(worker, stream, text),
    });
    this.#server = new PeerServer(
      this.socketPath,
      { type: 'welcome', sessionId: store.sessionId, directory: store.directory, inlineThreshold: store.options.inlineThreshold },
      {
        unclaimedWorker: (pid) => this.#pool.unclaimed(pid),
        workerConnected: (worker) => {
          worker.keepAlive(this.#alive);
          if (this.#actors.ownerOf(worker) !== undefined) this.#actors.connected(worker);
          else this.#scheduler.schedule();
        },
        clientAttached: () => {},
        message: (peer, message) => this.#router.route(peer, message),
        closed: (peer) => {
          // A worker without its connection is useless: make sure it dies; its exit cleans up.
          if (peer instanceof WorkerHandle) peer.kill();
          else this.#forgetPeer(peer);
        },
      },
      this.options.maxBlockedWorkers,
    );
  }

  get state(): NodeState {
    return this.#state;
  }

  /**
   * Starts the node: listens for worker and client connections and starts the workers. Resolves
   * once it accepts connections and the first of its prestarted workers is up (the others join
   * as they start; tasks run on whichever is up); idempotent. With
   * `{ workers: false }` the workers start only when the first task arrives (a program that only
   * uses the store runs none), or at {@link startWorkers}.
   */
  start(options: { readonly workers?: boolean } = {}): Promise<void> {
    if (this.#started) return this.#started;
    this.#state = 'starting';
    const listening = this.#server.listen();
    const workers = this.#pool.start(options.workers ?? true);
    this.#started = Promise.all([listening, workers]).then(() => {
      if (this.#state === 'starting') this.#state = 'running';
    });
    // A failure to listen surfaces through start() and ready(); never as an unhandled rejection.
    this.#started.catch(() => {});
    return this.#started;
  }

  /** Starts the prestarted workers now if they have not started (see {@link start}); idempotent. */
  startWorkers(): void {
    // Called for every task submitted: past the first, one property read.
    if (this.#pool.prestarted) return;
    // A failure to spawn leaves the tasks waiting (each replacement or extra worker tries again).
    this.#pool.startWorkers().catch((error: Error) => debug('could not start the workers: %s', error.message));
  }

  /** Resolves once the node is started (starting it if need be). */
  async ready(): Promise<void> {
    // The node's own handles do not keep the process alive while no task is pending; whoever
    // awaits readiness must not see the event loop run dry meanwhile.
    const keepAlive = setInterval(() => {}, 1 << 30);
    try {
      await this.start();
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Resources, load and objects of this node right now (what it reports to its head). */
  load(): NodeLoad {
    return nodeLoad(this.store.stats(), this.#scheduler, this.workerPids().length, descriptorUsage());
  }

  /** Every object of this node's store, with its names and the processes holding it (`shoal memory`). */
  objects(): NodeObject[] {
    const names = this.#names.namesById();
    const holders = new Map<string, ObjectHolder[]>();
    for (const peer of this.#peers()) {
      const kind = peer instanceof ClientHandle ? (peer.remote ? 'remote program' : 'program') : 'worker';
      for (const [id, refs] of peer.holds) holders.set(id, [...(holders.get(id) ?? []), { pid: peer.pid, kind, refs }]);
    }
    return this.store.list().map((object) => ({ ...object, names: names.get(object.id) ?? [], holders: holders.get(object.id) ?? [] }));
  }

  /** Worker processes alive now (for tests and status). */
  workerPids(): number[] {
    return this.#pool.pids();
  }

  /** Processes of this node's actors alive now (for tests and status). */
  actorPids(): number[] {
    return this.#actors.pids();
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

  getAll<T>(refs: readonly ObjectRef<T>[]): Promise<T[]> {
    return this.store.getAll(refs);
  }

  getSync<T>(ref: ObjectRef<T>): T {
    return this.store.getSync(ref);
  }

  makeRoom(bytes: number): Promise<void> {
    return this.store.makeRoom(bytes);
  }

  free(ref: ObjectRef): boolean {
    return this.store.free(ref);
  }

  stats(): StoreStats {
    return this.store.stats();
  }

  // ---- Runtime: tasks ---------------------------------------------------------------------

  submit(fn: FunctionSource, args: readonly unknown[], options: ResolvedRemoteOptions): ObjectRef {
    if (!this.#acceptsTasks()) throw new RuntimeShutdownError(`Cannot submit task ${fn.name}`);
    const built = buildArgs(args, this.store.options.inlineThreshold, (encoded) => this.store.putEncoded(encoded));
    const returnId = newObjectId();
    this.store.expect(returnId);
    const ref = new ObjectRef(returnId, this.store.sessionId);
    this.#submit(returnId, fn, built.args, built.deps, built.contains, options);
    return ref;
  }

  /** A task submitted by a worker (nested) or an attached program. */
  #submitFromPeer(peer: Peer, wire: WireTask): void {
    if (!this.#acceptsTasks()) return;
    this.store.expect(wire.returnId);
    // The submitter holds the result's ref from now on: counted here rather than by a later
    // `refs` message, which a fast task could otherwise beat (its result freed on arrival).
    this.#holds.holdFor(peer, wire.returnId);
    const fn: FunctionSource = { source: wire.fn.source, hash: wire.fn.hash, name: wire.fn.name };
    peer.functions.add(fn.hash);
    const deps = wire.args.flatMap((arg) => ('ref' in arg ? [arg.ref] : []));
    this.#submit(wire.returnId, fn, wire.args, deps, wire.contains, wire.options, peer);
  }

  #submit(
    returnId: string,
    fn: FunctionSource,
    args: readonly WireArg[],
    deps: readonly string[],
    contains: readonly string[],
    options: ResolvedRemoteOptions,
    submitter?: Peer,
  ): void {
    this.#fetchArguments(args);
    if (options.streamWindow === undefined) {
      this.#scheduler.submit({ returnId, fn, args, deps, contains, options, submitter });
      return;
    }
    // A streaming task runs here, next to its stream (items are not forwarded between nodes).
    this.#streams.open(returnId, options.streamWindow, submitter);
    this.#scheduler.submit({ returnId, fn, args, deps, contains, options, placement: 'local', submitter });
  }

  /** In a cluster, arguments made by another node are fetched here (a task that spills takes them along instead). */
  #fetchArguments(args: readonly WireArg[]): void {
    if (!this.cluster.joined) return;
    const refs = args.filter((arg) => 'ref' in arg);
    this.#objects.fetchMissing(
      refs.map((arg) => arg.ref),
      refs.map((arg) => arg.owner),
    );
  }

  // ---- Runtime: actors and streams ----------------------------------------------------------

  createActor(cls: FunctionSource, methods: readonly string[], args: readonly unknown[], options: ResolvedActorOptions): ActorHandle {
    if (!this.#acceptsTasks()) throw new RuntimeShutdownError(`Cannot create actor ${cls.name}`);
    const built = buildArgs(args, this.store.options.inlineThreshold, (encoded) => this.store.putEncoded(encoded));
    this.#fetchArguments(built.args);
    // Its lifetime object: the actor's id, and alive while refs to it (handles) are.
    const ref = this.store.put({ actor: cls.name });
    this.#actors.create(undefined, { id: ref.id, cls, methods, args: built.args, contains: built.contains, options });
    return new ActorHandle({ ref, className: cls.name, methods });
  }

  callActor(handle: ActorHandle, method: string, args: readonly unknown[]): ObjectRef {
    if (!this.#acceptsTasks()) throw new RuntimeShutdownError(`Cannot call ${handle[ACTOR_INFO].className}.${method}`);
    const built = buildArgs(args, this.store.options.inlineThreshold, (encoded) => this.store.putEncoded(encoded));
    const returnId = newObjectId();
    this.store.expect(returnId);
    const ref = new ObjectRef(returnId, this.store.sessionId);
    this.#fetchArguments(built.args);
    this.#actors.call(undefined, handle[ACTOR_INFO].ref.id, returnId, method, built.args, built.contains);
    return ref;
  }

  killActor(handle: ActorHandle, noRestart: boolean): void {
    this.#actors.kill(handle[ACTOR_INFO].ref.id, noRestart);
  }

  async getActor(name: string): Promise<ActorHandle> {
    checkObjectName(name);
    const actor = await this.#actors.lookup(name);
    if (!actor) throw new ActorNotFoundError(name);
    return new ActorHandle({ ref: new ObjectRef(actor.id, this.store.sessionId), className: actor.className, methods: actor.methods });
  }

  async streamNext(returnId: string, index: number): Promise<{ readonly ref: ObjectRef } | null> {
    const next = await this.#streams.pull(returnId, index);
    if ('id' in next) {
      // The stream's hold on the item passes to this ref.
      const ref = new ObjectRef(next.id, this.store.sessionId);
      this.store.release(next.id);
      return { ref };
    }
    if (next.error) throw next.error;
    return null;
  }

  closeStream(returnId: string): void {
    this.#streams.close(returnId);
  }

  wait(refs: readonly ObjectRef[], numReturns: number, timeoutMs: number | null): Promise<WaitResult> {
    const ids = new Array<string>(refs.length);
    for (let i = 0; i < refs.length; i++) ids[i] = refs[i]!.id;
    return this.#objects.waitSettled(ids, numReturns, timeoutMs).then((settled) => splitSettled(refs, settled));
  }

  cancel(ref: ObjectRef): void {
    this.#cancel(ref.id);
  }

  /**
   * Cancels what makes object `id`: a task (dropped if queued, its worker killed if running), or
   * a call of an actor of this node still queued (dropped; one the actor runs already goes on).
   */
  #cancel(id: string): void {
    if (this.#scheduler.tasks.has(id)) this.#scheduler.cancel(id);
    else this.#actors.cancel(id);
  }

  settled(ref: ObjectRef): Promise<void> {
    return this.store.whenSettled(ref.id);
  }

  async putNamed<T>(name: string, value: T | ObjectRef<T>): Promise<NamedVersion<T>> {
    checkObjectName(name);
    const ref = value instanceof ObjectRef ? (value as ObjectRef<T>) : this.put(value);
    const version = this.#names.bind(name, ref.id);
    return { name, version, ref };
  }

  async getNamed<T>(name: string): Promise<{ version: NamedVersion<T>; value: T }> {
    checkObjectName(name);
    const binding = this.#names.require(name);
    const ref = new ObjectRef<T>(binding.id, this.store.sessionId);
    return { version: { name, version: binding.version, ref }, value: await this.get(ref) };
  }

  watch<T>(name: string): AsyncIterableIterator<NamedVersion<T>> {
    checkObjectName(name);
    const sessionId = this.store.sessionId;
    return watchIterator<T>(name, (push) => {
      const current = this.#names.get(name);
      if (current) push({ name, version: current.version, ref: new ObjectRef<T>(current.id, sessionId) });
      return this.#names.watch(name, (binding) => push({ name, version: binding.version, ref: new ObjectRef<T>(binding.id, sessionId) }));
    });
  }

  /**
   * Serves a program that joined the cluster from a machine without a node, over `stream` (a
   * WebSocket whose token the head checked). It cannot share this machine's memory: its puts
   * arrive as bytes (written into segments here) and its gets are answered with bytes.
   */
  acceptRemote(stream: MessageStream): void {
    this.#server.accept(stream, true);
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Stops the node: pending tasks fail with RuntimeShutdownError, workers are asked to exit (and
   * killed after a grace period), connections close and the session directory is removed.
   * Idempotent: later calls wait for the same close.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close(WORKER_EXIT_GRACE_MS);
    return this.#closed;
  }

  /** Like {@link close}, but kills the workers at once instead of letting them exit. Idempotent. */
  destroy(): Promise<void> {
    this.#closed ??= this.#close(0);
    return this.#closed;
  }

  /** The {@link Runtime}'s name for {@link close}. */
  shutdown(): Promise<void> {
    return this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(graceMs: number): Promise<void> {
    this.#state = 'closing';
    // Until every worker is gone, its handles must keep the process alive.
    this.#keepAlive(true);
    this.#actors.close();
    this.#streams.clear();
    this.#scheduler.stop();
    await this.#pool.close(graceMs);
    await this.#server.close();
    this.#names.clear();
    this.store.close();
    this.#state = 'closed';
    debug('node %s shut down', this.store.sessionId);
  }

  #acceptsTasks(): boolean {
    return this.#state !== 'closing' && this.#state !== 'closed';
  }

  #peers(): Iterable<Peer> {
    return [...this.#pool.workers(), ...this.#pool.dedicated(), ...this.#server.clients()];
  }

  /** Releases what a peer that went away held: its refs, its watches, its mappings. */
  #forgetPeer(peer: Peer): void {
    this.#holds.forget(peer);
    this.#collection.forget(peer);
    this.#names.forget(peer);
    this.#objects.forget(peer);
    this.#actors.creatorGone(peer);
    this.#streams.forget(peer);
  }

  #workerExited(worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    this.metrics.workerExited();
    this.#forgetPeer(worker);
    this.#scheduler.workerExited(worker, code, signal);
    if (!this.#acceptsTasks()) return;
    this.#pool.replenish();
    this.#scheduler.schedule();
  }

  /**
   * While tasks are pending the node's server, sockets and worker processes keep the process
   * alive; otherwise they do not, so a program that is done exits (and its 'exit' hook kills the
   * workers and removes the session directory) without having to call shutdown().
   */
  /**
   * Whether work keeps the process alive: pending tasks and actor calls, except producers paused
   * for their consumers (only the consumer can let them go on: a program that read part of a
   * stream and is done exits, and the stream goes with it).
   */
  #working(): boolean {
    return this.#scheduler.tasks.size + this.#actors.pending > this.#streams.paused;
  }

  #updateAlive(): void {
    // Closing keeps the process alive until every worker is gone, whatever settles meanwhile.
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (this.#working()) {
      if (this.#letGo) clearImmediate(this.#letGo);
      this.#letGo = undefined;
      this.#keepAlive(true);
      return;
    }
    // Let go a turn later: a program awaiting one call after another would otherwise ref and
    // unref every socket and process of the node on each call.
    this.#letGo ??= setImmediate(() => {
      this.#letGo = undefined;
      if (!this.#working() && this.#state !== 'closing' && this.#state !== 'closed') this.#keepAlive(false);
    });
  }

  #keepAlive(alive: boolean): void {
    if (alive === this.#alive) return;
    this.#alive = alive;
    this.#server.keepAlive(alive);
    this.#pool.keepAlive(alive);
  }
}
