import {
  ACTOR_INFO,
  ActorHandle,
  ActorNotFoundError,
  BindFailedError,
  MAX_IDS_PER_MESSAGE,
  NotAvailableError,
  NotConnectedError,
  ObjectFreedError,
  ObjectNotFoundError,
  ObjectRef,
  NodeDisconnectedError,
  RuntimeShutdownError,
  SharedMemoryError,
  checkObjectName,
  decodeThrown,
  encodeValue,
  newObjectId,
  setObjectRefHooks,
  type EncodedValue,
  type NodeToWorker,
  type ObjectLocation,
  type WorkerToNode,
} from '@shoal/protocol';
import { afterFinalizers, collectGarbage, type ObjectWriter, type StoreStats, type TypedArrayKind } from '@shoal/store';
import type { Connection } from '../transport/connection.js';
import { RequestTracker } from '../transport/request-tracker.js';
import type { FunctionSource } from '../api/function-source.js';
import type { ResolvedActorOptions, ResolvedRemoteOptions, ResolvedRuntimeEnv } from '../options.js';
import { watchIterator } from '../api/watch-iterator.js';
import { splitSettled, type NamedVersion, type Runtime, type WaitResult } from '../api/runtime.js';
import { buildArgs } from '../api/task-args.js';
import { LocalObjects, RemoteObjects, type ObjectIO } from './object-io.js';
import { RefTracker } from './ref-tracker.js';
import { UnmapCollector } from './unmap-collector.js';
import { argumentError } from '@shoal/protocol';

type Request =
  | { type: 'resolve'; ids: readonly string[]; owners?: readonly string[] }
  | { type: 'wait'; ids: readonly string[]; numReturns: number; timeoutMs: number | null }
  | { type: 'bind'; name: string; id: string }
  | { type: 'reserve'; id: string; size: number }
  | { type: 'room'; size: number }
  | { type: 'lookup'; name: string }
  | { type: 'actor-lookup'; name: string }
  | { type: 'stream-pull'; returnId: string; index: number }
  | { type: 'stream-wait'; taskId: number; index: number };

/** How a {@link NodeClient} reaches its node's objects, and what it tells its worker side. */
export interface NodeClientSettings {
  /** The node's session (replaced by the one in its welcome when joining over the network). */
  readonly sessionId: string;
  /** The node's session directory (empty when joining over the network). */
  readonly directory: string;
  /** Objects from this many bytes are written to segments (or, over the network, still sent inline). */
  readonly inlineThreshold: number;
  /**
   * Whether this program joined over the network from a machine without a node.
   * @default false
   */
  readonly remote?: boolean;
  /** The runtimeEnv of every task this program submits, under each task's own (its `init({ runtimeEnv })`). */
  readonly runtimeEnv?: ResolvedRuntimeEnv;
  /**
   * The object I/O to use: a worker shares its own with its task executor.
   * @default local segments of `directory`, or bytes over the connection when `remote`
   */
  readonly objects?: ObjectIO;
  /** Called with each function submitted from here (a worker's executor learns it: the node counts it as known there). */
  readonly onSubmit?: (fn: FunctionSource) => void;
}

/**
 * The runtime of a process connected to a node over its unix socket: a worker process (whose
 * entry gives the tasks the node sends to its TaskExecutor) or an attached client
 * (`init({ address })`, never runs tasks). Either way it serves the public API (put, get,
 * remote, wait, names) by talking to the node. Segments are read and written directly in the
 * node's session directory; only small messages use the socket.
 *
 * @example
 * ```ts
 * const client = new NodeClient(connection, { sessionId, directory, inlineThreshold }, 'attached');
 * const ref = client.put({ hello: 'world' });
 * console.log(await client.get(ref));
 * ```
 */
export class NodeClient implements Runtime {
  readonly kind: 'worker' | 'attached';
  /** Whether this program joined over the network from a machine without a node (no shared memory). */
  readonly remote: boolean;
  /** The node's session (set from its welcome when joining over the network). */
  sessionId: string;
  readonly directory: string;
  readonly inlineThreshold: number;
  /** Resolves when the node has accepted this process (attached clients), rejects if the connection fails first. */
  readonly connected: Promise<void>;
  readonly #connection: Connection<NodeToWorker, WorkerToNode>;
  readonly #objects: ObjectIO;
  readonly #onSubmit: ((fn: FunctionSource) => void) | undefined;
  /** This program's runtimeEnv (init({ runtimeEnv }) of an attached program), and the options it made with it. */
  readonly #runtimeEnv: ResolvedRuntimeEnv | undefined;
  readonly #mergedOptions = new WeakMap<ResolvedRemoteOptions, ResolvedRemoteOptions>();
  readonly #requests = new RequestTracker();
  readonly #refs: RefTracker;
  readonly #watches = new Map<string, Set<(version: NamedVersion) => void>>();
  /**
   * Refs the node said are settled (a `wait` answer, a `get`): an object never goes back to
   * pending, so a `wait` that needs no more than these is answered here, with no message.
   * Weak: it goes with the ref.
   */
  readonly #settled = new WeakSet<ObjectRef>();
  /** Requests and watch iterators someone is awaiting: while any, the socket keeps the process alive. */
  #awaited = 0;
  #closed = false;
  readonly #unmaps = new UnmapCollector();
  /** Set when this program closes the connection itself (shutdown), not the node. */
  #closing = false;
  /** Why requests fail once the node closed the connection under this program. */
  /** Why the connection ended when this program did not end it: the node went away, or could not be reached. */
  #lost: Error | undefined;
  #welcomed: { resolve(): void; reject(error: Error): void } | undefined;

  constructor(connection: Connection<NodeToWorker, WorkerToNode>, settings: NodeClientSettings, kind: 'worker' | 'attached' = 'worker') {
    this.kind = kind;
    this.remote = settings.remote === true;
    this.#connection = connection;
    this.connected = new Promise<void>((resolve, reject) => (this.#welcomed = { resolve, reject }));
    // Nobody may await it (a worker): never an unhandled rejection.
    this.connected.catch(() => {});
    // Until the node answers, the connection keeps the process alive (then only while awaited).
    this.#setAwaited(1);
    this.sessionId = settings.sessionId;
    this.directory = settings.directory;
    this.#runtimeEnv = settings.runtimeEnv;
    this.inlineThreshold = settings.inlineThreshold;
    this.#objects =
      settings.objects ??
      (this.remote ? new RemoteObjects(() => this.#welcomed === undefined) : new LocalObjects(this.directory, this.inlineThreshold));
    this.#onSubmit = settings.onSubmit;
    this.#refs = new RefTracker({
      send: (hold, release) => this.#connection.send({ type: 'refs', hold, release }),
      onLastRef: (id) => this.#objects.forget(id),
    });
    setObjectRefHooks({
      track: (ref) => this.#refs.track(ref),
      untrack: (ref) => this.#refs.untrack(ref),
      get: (ref) => this.get(ref),
    });
  }

  /** Handles a message from the node. */
  handle(message: NodeToWorker): void {
    switch (message.type) {
      case 'resolved':
        this.#answer(message.requestId, message.locations);
        return;
      case 'waited':
        this.#answer(message.requestId, message.ready);
        return;
      case 'reserved':
        this.#answer(message.requestId, message.error === undefined ? message.lent : toError(decodeThrown(message.error)));
        return;
      case 'bound':
        this.#answer(message.requestId, message.error === undefined ? message.version : new BindFailedError(message.error));
        return;
      case 'looked-up':
      case 'actor-found':
      case 'stream-next':
      case 'stream-go':
        this.#answer(message.requestId, message);
        return;
      case 'named': {
        // The node holds it for us already; this ref takes that hold over.
        this.#refs.heldByNode(message.id);
        const ref = new ObjectRef(message.id, this.sessionId);
        for (const listener of [...(this.#watches.get(message.name) ?? [])]) {
          listener({ name: message.name, version: message.version, ref });
        }
        return;
      }
      case 'collect':
        void this.#collect(message.round);
        return;
      case 'output':
        // A task this program submitted wrote it (prefixed with its function and worker by the node).
        (message.stream === 'out' ? process.stdout : process.stderr).write(message.text);
        return;
      case 'forget': {
        let mapped = 0;
        for (const id of message.ids) mapped += this.#objects.forget(id);
        // A worker's small heap gives V8 little reason to collect what it unmaps; see UnmapCollector.
        if (this.kind === 'worker') this.#unmaps.freed(mapped);
        return;
      }
      case 'welcome':
        // The same session a local client found in the node's address; news to a remote one.
        this.sessionId = message.sessionId;
        if (this.#welcomed) {
          this.#welcomed.resolve();
          this.#welcomed = undefined;
          this.#setAwaited(-1);
        }
        return;
      case 'execute':
      case 'recall':
      case 'shutdown':
      case 'actor-init':
      case 'call':
      case 'credit':
        // A worker's entry gives these to its task executor and to the process; a client ignores them.
        return;
    }
  }

  /** The node is short of room: refs this process dropped are counted out now, not at some later GC. */
  async #collect(round: number): Promise<void> {
    // The node is short of memory: mappings only the cache holds go too (they keep objects from
    // being spilled), not just dropped refs.
    this.#objects.letGoOfMappings();
    collectGarbage();
    // Finalization callbacks run in a task after the collection: let them, then send their releases.
    await afterFinalizers();
    this.#refs.flush();
    if (!this.#closed) this.#connection.send({ type: 'collected', round });
  }

  #answer(requestId: number, value: unknown): void {
    if (this.#requests.answer(requestId, value)) this.#setAwaited(-1);
  }

  /** The connection to the node is gone: everything pending fails, and so does what follows. */
  closed(cause?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    // Not shut down by this program: its node went away, which is what it must be told — or,
    // never welcomed, it could not be reached (a stale SHOAL_ADDRESS: ENOENT), which is the cause.
    if (!this.#closing && this.#welcomed && cause) this.#lost = cause;
    else if (!this.#closing) this.#lost = new NodeDisconnectedError(this.remote ? `serving this program at the head (node ${this.sessionId || 'unknown'})` : `${this.sessionId} (unix:${this.directory}/node.sock)`);
    this.#welcomed?.reject(cause ?? this.#lost ?? new RuntimeShutdownError('The Shoal node closed the connection'));
    this.#requests.failAll(this.#lost ?? new RuntimeShutdownError('Lost the connection to the Shoal node'));
  }

  /** Attached clients let the process exit when nothing is awaited from the node. */
  #setAwaited(delta: number): void {
    if (this.kind !== 'attached' || this.#closed) return;
    const before = this.#awaited;
    this.#awaited += delta;
    if (before === 0 && this.#awaited > 0) this.#connection.socket.ref();
    else if (before > 0 && this.#awaited === 0) this.#connection.socket.unref();
  }

  // ---- Runtime ----------------------------------------------------------------------------

  put<T>(value: T): ObjectRef<T> {
    return this.#putEncoded<T>(encodeValue(value));
  }

  #putEncoded<T>(encoded: EncodedValue): ObjectRef<T> {
    this.#assertOpen('put an object');
    const id = newObjectId();
    this.#connection.send({ type: 'put', id, payload: this.#objects.payload(id, encoded) });
    this.#refs.heldByNode(id);
    return new ObjectRef<T>(id, this.sessionId);
  }

  /**
   * Asks the node for room for a segment of `size` bytes about to be written as object `id` (a
   * task result), before any byte is written. Resolves to the name of the file of reused memory
   * the node lent for it (fill it rather than create one), if any.
   * @throws ObjectStoreFullError (rejects) when the node's store has no room for it.
   */
  reserve(id: string, size: number): Promise<string | undefined> {
    return this.#request<string | undefined>({ type: 'reserve', id, size });
  }

  create(kind: TypedArrayKind | number, length?: number): ObjectWriter<ArrayBufferView> {
    this.#assertOpen('create an object');
    const id = newObjectId();
    return this.#objects.create(id, kind, length, {
      publishInline: (array) => this.put(array),
      publish: (size) => {
        this.#connection.send({ type: 'put', id, payload: { size, contains: [] } });
        this.#refs.heldByNode(id);
        return new ObjectRef(id, this.sessionId);
      },
    });
  }

  getAll<T>(refs: readonly ObjectRef<T>[]): Promise<T[]> {
    return Promise.all(refs.map((ref) => this.get(ref)));
  }

  async get<T>(ref: ObjectRef<T>): Promise<T> {
    if (!(ref instanceof ObjectRef)) throw argumentError('ERR_INVALID_ARGUMENT', 'Expected an ObjectRef');
    const locations = await this.#request<Record<string, ObjectLocation>>({ type: 'resolve', ids: [ref.id], owners: [ref.owner] });
    const location = locations[ref.id] ?? { kind: 'freed' };
    this.#settled.add(ref);
    try {
      return this.#objects.materialize(ref.id, location) as T;
    } catch (error) {
      // Spilled to disk between the answer and the mapping (the node keeps an object it hands
      // out for a grace period, so this is rare): asked again, the node reads it back.
      if (!(error instanceof SharedMemoryError && error.errnoCode === 'ENOENT' && location.kind === 'segment')) throw error;
      return this.#objects.materialize(ref.id, await this.locate(ref.id)) as T;
    }
  }

  /** Where object `id` of this node is now, as the node answers a resolve (a spilled one is read back first). */
  async locate(id: string): Promise<ObjectLocation> {
    const locations = await this.#request<Record<string, ObjectLocation>>({ type: 'resolve', ids: [id] });
    return locations[id] ?? { kind: 'freed' };
  }

  getSync<T>(ref: ObjectRef<T>): T {
    return this.#objects.readSync(ref.id) as T;
  }

  async makeRoom(bytes: number): Promise<void> {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw argumentError('ERR_OUT_OF_RANGE', `Expected a number of bytes (an integer ≥ 0), got \`${String(bytes)}\``);
    // A program without a node on its machine writes nothing into this machine's memory.
    if (this.remote) return;
    this.#assertOpen('make room');
    // This process's own cached mappings may be what fills the memory: they go when collected.
    this.#objects.letGoOfMappings();
    await this.#request<undefined>({ type: 'room', size: bytes });
  }

  free(ref: ObjectRef): boolean {
    this.#connection.send({ type: 'free', ids: [ref.id] });
    return true;
  }

  stats(): StoreStats {
    throw new NotAvailableError('stats');
  }

  submit(fn: FunctionSource, args: readonly unknown[], given: ResolvedRemoteOptions): ObjectRef {
    this.#assertOpen(`submit a task of ${fn.name}`);
    this.#onSubmit?.(fn);
    const options = this.#withRuntimeEnv(given);
    const built = buildArgs(args, this.inlineThreshold, (encoded) => this.#putEncoded(encoded));
    const returnId = newObjectId();
    this.#connection.send({
      type: 'submit',
      task: { returnId, fn: { hash: fn.hash, name: fn.name, source: fn.source }, args: built.args, contains: built.contains, options },
    });
    this.#refs.heldByNode(returnId);
    return new ObjectRef(returnId, this.sessionId);
  }

  /** `options` with this program's runtimeEnv under the task's own (made once per options object). */
  #withRuntimeEnv(options: ResolvedRemoteOptions): ResolvedRemoteOptions {
    const base = this.#runtimeEnv;
    if (base === undefined) return options;
    let merged = this.#mergedOptions.get(options);
    if (!merged) {
      const own = options.runtimeEnv;
      const cwd = own?.cwd ?? base.cwd;
      merged = { ...options, runtimeEnv: { env: { ...base.env, ...own?.env }, ...(cwd === undefined ? {} : { cwd }) } };
      this.#mergedOptions.set(options, merged);
    }
    return merged;
  }

  async wait(refs: readonly ObjectRef[], numReturns: number, timeoutMs: number | null): Promise<WaitResult> {
    if (refs.length > MAX_IDS_PER_MESSAGE) {
      throw argumentError('ERR_OUT_OF_RANGE', `Expected at most ${MAX_IDS_PER_MESSAGE} refs to wait on at once, got \`${refs.length}\`: wait on fewer at a time`);
    }
    // Refs known settled count at once; the node is asked about the others only (none: no
    // message). Still asked when those known would be enough, since `ready` has every ref
    // ready by then (a poll, `numReturns: 0`, included).
    const settled = new Uint8Array(refs.length);
    const unknown: string[] = [];
    for (let i = 0; i < refs.length; i++) {
      if (this.#settled.has(refs[i]!)) settled[i] = 1;
      else unknown.push(refs[i]!.id);
    }
    const known = refs.length - unknown.length;
    if (unknown.length > 0) {
      const want = Math.max(0, numReturns - known);
      const ready = new Set(await this.#request<string[]>({ type: 'wait', ids: unknown, numReturns: want, timeoutMs }));
      for (let i = 0; i < refs.length; i++) {
        if (settled[i] === 0 && ready.has(refs[i]!.id)) {
          settled[i] = 1;
          this.#settled.add(refs[i]!);
        }
      }
    }
    return splitSettled(refs, settled);
  }

  cancel(ref: ObjectRef): void {
    this.#connection.send({ type: 'cancel', id: ref.id });
  }

  async settled(ref: ObjectRef): Promise<void> {
    // A wait for it alone: answered once it is ready or failed (or when the connection goes).
    await this.wait([ref], 1, null).catch(() => undefined);
  }

  async putNamed<T>(name: string, value: T | ObjectRef<T>): Promise<NamedVersion<T>> {
    checkObjectName(name);
    const ref = value instanceof ObjectRef ? (value as ObjectRef<T>) : this.put(value);
    const version = await this.#request<number>({ type: 'bind', name, id: ref.id });
    return { name, version, ref };
  }

  async getNamed<T>(name: string): Promise<{ version: NamedVersion<T>; value: T }> {
    checkObjectName(name);
    // The object may be replaced (and freed) between the lookup and the read: look again then.
    for (let attempt = 0; ; attempt++) {
      const found = await this.#request<Extract<NodeToWorker, { type: 'looked-up' }>>({ type: 'lookup', name });
      if (found.id === null) {
        throw new ObjectNotFoundError(name, `no object is published under the name "${name}"; publish one with store.putNamed().`);
      }
      // The node holds it for us already; this ref takes that hold over.
      this.#refs.heldByNode(found.id);
      const ref = new ObjectRef<T>(found.id, this.sessionId);
      try {
        const value = this.#objects.materialize(found.id, found.location ?? { kind: 'freed' }) as T;
        return { version: { name, version: found.version, ref }, value };
      } catch (error) {
        if (!(error instanceof ObjectFreedError) || attempt >= 3) throw error;
      }
    }
  }

  watch<T>(name: string): AsyncIterableIterator<NamedVersion<T>> {
    checkObjectName(name);
    return watchIterator<T>(
      name,
      (push) => {
        let listeners = this.#watches.get(name);
        if (!listeners) {
          this.#watches.set(name, (listeners = new Set()));
          this.#connection.send({ type: 'watch', name });
        }
        const listener = push as (version: NamedVersion) => void;
        listeners.add(listener);
        return () => {
          listeners.delete(listener);
          if (listeners.size === 0) {
            this.#watches.delete(name);
            this.#connection.send({ type: 'unwatch', name });
          }
        };
      },
      (waiting) => this.#setAwaited(waiting ? 1 : -1),
    );
  }

  createActor(cls: FunctionSource, methods: readonly string[], args: readonly unknown[], options: ResolvedActorOptions): ActorHandle {
    this.#assertOpen(`create actor ${cls.name}`);
    const built = buildArgs(args, this.inlineThreshold, (encoded) => this.#putEncoded(encoded));
    // Its lifetime object (the actor's id): put first, so the node has it when the actor is made.
    const ref = this.put({ actor: cls.name });
    this.#connection.send({
      type: 'actor-create',
      actorId: ref.id,
      cls: { hash: cls.hash, name: cls.name, source: cls.source },
      methods: [...methods],
      args: built.args,
      contains: built.contains,
      options,
    });
    return new ActorHandle({ ref, className: cls.name, methods });
  }

  callActor(handle: ActorHandle, method: string, args: readonly unknown[]): ObjectRef {
    this.#assertOpen(`call ${handle[ACTOR_INFO].className}.${method}`);
    const built = buildArgs(args, this.inlineThreshold, (encoded) => this.#putEncoded(encoded));
    const returnId = newObjectId();
    this.#connection.send({ type: 'actor-call', actorId: handle[ACTOR_INFO].ref.id, returnId, method, args: built.args, contains: built.contains });
    this.#refs.heldByNode(returnId);
    return new ObjectRef(returnId, this.sessionId);
  }

  killActor(handle: ActorHandle, noRestart: boolean): void {
    this.#assertOpen(`kill actor ${handle[ACTOR_INFO].className}`);
    this.#connection.send({ type: 'actor-kill', actorId: handle[ACTOR_INFO].ref.id, noRestart });
  }

  async getActor(name: string): Promise<ActorHandle> {
    checkObjectName(name);
    const found = await this.#request<Extract<NodeToWorker, { type: 'actor-found' }>>({ type: 'actor-lookup', name });
    if (found.actorId === null) throw new ActorNotFoundError(name);
    // The node holds it for us already; this handle's ref takes that hold over.
    this.#refs.heldByNode(found.actorId);
    return new ActorHandle({ ref: new ObjectRef(found.actorId, this.sessionId), className: found.className, methods: found.methods });
  }

  async streamNext(returnId: string, index: number): Promise<{ readonly ref: ObjectRef } | null> {
    const next = await this.#request<Extract<NodeToWorker, { type: 'stream-next' }>>({ type: 'stream-pull', returnId, index });
    if (next.id !== undefined) {
      // Held for us by the node already (the stream's hold passed to us): this ref takes it over.
      this.#refs.heldByNode(next.id);
      return { ref: new ObjectRef(next.id, this.sessionId) };
    }
    if (next.error !== undefined) throw toError(decodeThrown(next.error));
    return null;
  }

  /** In a worker: whether its streaming task or call `taskId` may yield item `index` (answered once the consumer took enough). */
  streamWait(taskId: number, index: number): Promise<{ upTo: number; stop: boolean }> {
    return this.#request<{ upTo: number; stop: boolean }>({ type: 'stream-wait', taskId, index });
  }

  closeStream(returnId: string): void {
    if (!this.#closed) this.#connection.send({ type: 'stream-close', returnId });
  }

  /** The {@link Runtime}'s name for {@link close}; not available inside a task. */
  async shutdown(): Promise<void> {
    if (this.kind === 'worker') {
      throw new NotAvailableError('shutdown');
    }
    await this.close();
  }

  /**
   * Disconnects from the node: what this process still has to say (refs it released, frees) is
   * written first; requests in flight then fail with RuntimeShutdownError. An attached process
   * only disconnects: the node and its objects belong to another process. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    // The refs released this turn would otherwise go out after it, on a closed connection.
    this.#refs.flush();
    this.#closing = true;
    this.#connection.end();
    this.closed();
  }

  /** Disconnects at once, dropping what was not written yet. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    this.#connection.destroy();
    this.closed();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Puts need the connection: after it closed, the node has given back this process's capacity
   * slot, so room reserved now would never be returned.
   */
  #assertOpen(operation: string): void {
    if (this.#closed) throw this.#lost ?? new RuntimeShutdownError(`Cannot ${operation}`);
    // A program joining from a machine without a node learns the id its refs carry when the head
    // welcomes it: nothing that makes a ref can be done before.
    if (this.sessionId === '') throw new NotConnectedError(operation);
  }

  #request<T>(message: Request): Promise<T> {
    if (this.#closed) return Promise.reject(this.#lost ?? new RuntimeShutdownError('The connection to the Shoal node is closed'));
    this.#setAwaited(1);
    return this.#requests.request<T>((requestId) => this.#connection.send({ ...message, requestId }));
  }
}

/** What the node sent as an error, as one (a refusal must reject, whatever was encoded). */
function toError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}
