import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ObjectFreedError,
  ObjectNotFoundError,
  ObjectRef,
  RuntimeShutdownError,
  ShoalError,
  formatBytes,
  checkObjectName,
  decodeValue,
  encodeValue,
  newObjectId,
  setObjectRefHooks,
  writeInline,
  type EncodedValue,
  type NodeToWorker,
  type ObjectLocation,
  type WireArg,
  type WorkerToNode,
} from '@shoal/protocol';
import { SessionSegments, type ObjectWriter, type StoreStats, type TypedArrayKind } from '@shoal/store';
import type { Connection } from '../transport/connection.js';
import { compileFunction, type FunctionSource } from '../api/function-source.js';
import { encodeError } from '../thrown.js';
import type { ResolvedRemoteOptions } from '../options.js';
import { watchIterator } from '../api/watch-iterator.js';
import type { NamedVersion, Runtime, WaitResult } from '../api/runtime.js';
import { buildArgs } from '../api/task-args.js';

interface Pending<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

type Request =
  | { type: 'resolve'; ids: readonly string[]; owners?: readonly string[] }
  | { type: 'wait'; ids: readonly string[]; numReturns: number; timeoutMs: number | null }
  | { type: 'bind'; name: string; id: string }
  | { type: 'lookup'; name: string };

/** Largest object a program without a node of its own sends (one message; see REMOTE_MAX_FRAME_BYTES). */
const REMOTE_OBJECT_LIMIT = 1024 ** 3;

/**
 * The runtime of a process connected to a node over its unix socket: a worker process (it runs
 * the tasks its node sends, one at a time) or an attached client (`init({ address })`, never
 * runs tasks). Either way it serves the public API (put, get, remote, wait, names) by talking to
 * the node. Segments are read and written directly in the node's session directory; only small
 * messages use the socket.
 */
export class NodeClient implements Runtime {
  readonly kind: 'worker' | 'attached';
  /** Whether this program joined over the network from a machine without a node (no shared memory). */
  readonly remote: boolean;
  /** The node's session (set from its welcome when joining over the network). */
  sessionId: string;
  readonly directory: string;
  readonly inlineThreshold: number;
  readonly #connection: Connection<NodeToWorker, WorkerToNode>;
  readonly #segments: SessionSegments;
  readonly #functions = new Map<string, (...args: unknown[]) => unknown>();
  #queue: Extract<NodeToWorker, { type: 'execute' }>[] = [];
  #busy = false;
  readonly #require: NodeJS.Require;
  readonly #requests = new Map<number, Pending<unknown>>();
  #nextRequest = 1;
  readonly #counts = new Map<string, number>();
  /** Ids the node already counts a hold of ours for (our puts and submits): no `refs` hold needed. */
  readonly #heldByNode = new Set<string>();
  #holds: string[] = [];
  #releases: string[] = [];
  #refsFlushScheduled = false;
  readonly #dropped = new FinalizationRegistry<string>((id) => this.#untrack(id));
  readonly #watches = new Map<string, Set<(version: NamedVersion) => void>>();
  /** Requests and watch iterators someone is awaiting: while any, the socket keeps the process alive. */
  #awaited = 0;
  #closed = false;
  #welcomed: { resolve(): void; reject(error: Error): void } | undefined;
  /** Resolves when the node has accepted this process (attached clients), rejects if the connection fails first. */
  readonly connected: Promise<void>;

  constructor(
    connection: Connection<NodeToWorker, WorkerToNode>,
    settings: { sessionId: string; directory: string; inlineThreshold: number; remote?: boolean },
    kind: 'worker' | 'attached' = 'worker',
  ) {
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
    this.#segments = new SessionSegments(settings.directory);
    this.inlineThreshold = settings.inlineThreshold;
    // Tasks that `require()` resolve from the directory the program was started in.
    this.#require = createRequire(pathToFileURL(join(process.cwd(), 'noop.js')));
    setObjectRefHooks({
      track: (ref) => this.#track(ref),
      untrack: (ref) => {
        if (this.#dropped.unregister(ref)) this.#untrack(ref.id);
      },
      get: (ref) => this.get(ref),
    });
  }

  /** Handles a message from the node. */
  handle(message: NodeToWorker): void {
    switch (message.type) {
      case 'execute':
        // Compile now, not when it runs: the node counts this worker as having the function
        // even if this task is recalled before it starts.
        if (message.fn.source !== undefined && !this.#functions.has(message.fn.hash)) {
          this.#functions.set(message.fn.hash, this.#compile(message.fn.source));
        }
        this.#queue.push(message);
        if (!this.#busy) void this.#drain();
        return;
      case 'recall': {
        const wanted = new Set(message.taskIds);
        const kept = this.#queue.filter((task) => !wanted.has(task.taskId));
        const taskIds = this.#queue.filter((task) => wanted.has(task.taskId)).map((task) => task.taskId);
        this.#queue = kept;
        this.#connection.send({ type: 'recalled', taskIds });
        return;
      }
      case 'resolved':
        this.#answer(message.requestId, message.locations);
        return;
      case 'waited':
        this.#answer(message.requestId, message.ready);
        return;
      case 'bound':
        this.#answer(message.requestId, message.error === undefined ? message.version : new ShoalError('ERR_BIND_FAILED', message.error));
        return;
      case 'looked-up':
        this.#answer(message.requestId, message);
        return;
      case 'named': {
        // The node holds it for us already; this ref takes that hold over.
        this.#heldByNode.add(message.id);
        const ref = new ObjectRef(message.id, this.sessionId);
        for (const listener of [...(this.#watches.get(message.name) ?? [])]) {
          listener({ name: message.name, version: message.version, ref });
        }
        return;
      }
      case 'forget':
        this.#segments.forget(message.ids);
        return;
      case 'welcome':
        if (this.remote) this.sessionId = message.sessionId;
        if (this.#welcomed) {
          this.#welcomed.resolve();
          this.#welcomed = undefined;
          this.#setAwaited(-1);
        }
        return;
      case 'shutdown':
        process.exit(0);
    }
  }

  #answer(requestId: number, value: unknown): void {
    const pending = this.#requests.get(requestId);
    if (!pending) return;
    this.#requests.delete(requestId);
    this.#setAwaited(-1);
    if (value instanceof Error) pending.reject(value);
    else pending.resolve(value);
  }

  /** The connection to the node is gone: everything pending fails, and so does what follows. */
  closed(cause?: Error): void {
    this.#closed = true;
    this.#welcomed?.reject(cause ?? new RuntimeShutdownError('The Shoal node closed the connection'));
    const error = new RuntimeShutdownError('Lost the connection to the Shoal node');
    for (const pending of this.#requests.values()) pending.reject(error);
    this.#requests.clear();
  }

  /** Attached clients let the process exit when nothing is awaited from the node. */
  #setAwaited(delta: number): void {
    if (this.kind !== 'attached' || this.#closed) return;
    const before = this.#awaited;
    this.#awaited += delta;
    if (before === 0 && this.#awaited > 0) this.#connection.socket.ref();
    else if (before > 0 && this.#awaited === 0) this.#connection.socket.unref();
  }

  // ---- tasks ------------------------------------------------------------------------------

  /** Runs queued tasks one at a time, in the order the node sent them. */
  async #drain(): Promise<void> {
    this.#busy = true;
    while (this.#queue.length > 0) await this.#execute(this.#queue.shift()!);
    this.#busy = false;
  }

  async #execute(message: Extract<NodeToWorker, { type: 'execute' }>): Promise<void> {
    let result: unknown;
    try {
      const fn = this.#function(message.fn.hash);
      const args = message.args.map((arg, i) => this.#argument(arg, i));
      result = await fn(...args);
    } catch (error) {
      this.#connection.send({ type: 'failed', taskId: message.taskId, error: encodeError(error) });
      return;
    }
    try {
      const encoded = encodeValue(result, 'result');
      const contains = encoded.refs.map((ref) => ref.id);
      if (encoded.layout.totalSize >= this.inlineThreshold) {
        this.#segments.writeEncoded(message.returnId, encoded);
        this.#connection.send({ type: 'done', taskId: message.taskId, result: { size: encoded.layout.totalSize, contains } });
      } else {
        const bytes = writeInline(encoded);
        this.#connection.send({ type: 'done', taskId: message.taskId, result: { size: bytes.byteLength, bytes, contains } });
      }
    } catch (error) {
      this.#connection.send({ type: 'failed', taskId: message.taskId, error: encodeError(error) });
    }
  }

  /** Compiles shipped source; a source that does not compile becomes a function that throws why. */
  #compile(source: string): (...args: unknown[]) => unknown {
    try {
      return compileFunction(source, this.#require);
    } catch (error) {
      return () => {
        throw error;
      };
    }
  }

  #function(hash: string): (...args: unknown[]) => unknown {
    const fn = this.#functions.get(hash);
    if (!fn) throw new Error(`The node sent function ${hash} without its source (this is a bug).`);
    return fn;
  }

  #argument(arg: WireArg, index: number): unknown {
    if ('value' in arg) return decodeValue(arg.value, { copy: true, where: `argument ${index}` });
    if (!arg.location) throw new Error(`The node sent argument ${index} without its location (this is a bug).`);
    return this.#materialize(arg.ref, arg.location);
  }

  #materialize(id: string, location: ObjectLocation): unknown {
    switch (location.kind) {
      case 'inline':
        return decodeValue(location.bytes, { copy: true, where: `object ${id}` });
      case 'segment':
        return this.#segments.read(id, location.size);
      case 'error':
        throw decodeValue(location.error, { copy: true, where: `the error of object ${id}` });
      case 'freed':
        throw new ObjectFreedError(id);
    }
  }

  // ---- Runtime ----------------------------------------------------------------------------

  put<T>(value: T): ObjectRef<T> {
    return this.#putEncoded<T>(encodeValue(value));
  }

  #putEncoded<T>(encoded: EncodedValue): ObjectRef<T> {
    const id = newObjectId();
    const contains = encoded.refs.map((ref) => ref.id);
    const size = encoded.layout.totalSize;
    if (this.remote) {
      this.#assertWelcomed('put an object');
      if (size > REMOTE_OBJECT_LIMIT) {
        throw new ShoalError(
          'ERR_OBJECT_TOO_LARGE',
          `Cannot store an object of ${formatBytes(size)}: a program on a machine without a node sends each object ` +
            'whole, up to 1 GiB. Split it into several objects, or run the program on a machine with a node ' +
            '(`shoal start --address ...`).',
        );
      }
    }
    if (size >= this.inlineThreshold && !this.remote) {
      this.#segments.writeEncoded(id, encoded);
      this.#connection.send({ type: 'put', id, payload: { size, contains } });
    } else {
      this.#connection.send({ type: 'put', id, payload: { size, bytes: writeInline(encoded), contains } });
    }
    this.#heldByNode.add(id);
    return new ObjectRef<T>(id, this.sessionId);
  }

  create(kind: TypedArrayKind | number, length?: number): ObjectWriter<ArrayBufferView> {
    const id = newObjectId();
    const resolvedKind = typeof kind === 'number' ? 'Uint8Array' : kind.name;
    const count = typeof kind === 'number' ? kind : (length ?? Number.NaN);
    return this.#segments.create(id, resolvedKind, count, {
      // Over the network there is no segment to write into: fill in memory, send at seal().
      inlineThreshold: this.remote ? Number.POSITIVE_INFINITY : this.inlineThreshold,
      publishInline: (array) => this.put(array),
      reserve: () => {},
      unreserve: () => {},
      publish: (size) => {
        this.#connection.send({ type: 'put', id, payload: { size, contains: [] } });
        this.#heldByNode.add(id);
        return new ObjectRef(id, this.sessionId);
      },
    });
  }

  async get<T>(ref: ObjectRef<T>): Promise<T> {
    if (!(ref instanceof ObjectRef)) throw new TypeError('Expected an ObjectRef');
    const locations = await this.#request<Record<string, ObjectLocation>>({ type: 'resolve', ids: [ref.id], owners: [ref.owner] });
    return this.#materialize(ref.id, locations[ref.id] ?? { kind: 'freed' }) as T;
  }

  getSync<T>(ref: ObjectRef<T>): T {
    if (this.remote) {
      throw new ObjectNotFoundError(
        ref.id,
        'this program joined the cluster from a machine without a node, so no object is in its memory: use `await get(ref)`.',
      );
    }
    try {
      this.#segments.check(ref.id);
    } catch {
      throw new ObjectNotFoundError(
        ref.id,
        'inside a task, only objects in shared memory can be read synchronously; use `await get(ref)`.',
      );
    }
    return this.#segments.read(ref.id) as T;
  }

  free(ref: ObjectRef): boolean {
    this.#connection.send({ type: 'free', ids: [ref.id] });
    return true;
  }

  stats(): StoreStats {
    throw new ShoalError('ERR_NOT_AVAILABLE', 'store.stats() is available in the driver, not inside tasks.');
  }

  submit(fn: FunctionSource, args: readonly unknown[], options: ResolvedRemoteOptions): ObjectRef {
    // The node counts functions submitted from here as known to this worker.
    if (!this.#functions.has(fn.hash)) this.#functions.set(fn.hash, this.#compile(fn.source));
    const built = buildArgs(args, this.inlineThreshold, (encoded) => this.#putEncoded(encoded));
    const returnId = newObjectId();
    this.#connection.send({
      type: 'submit',
      task: { returnId, fn: { hash: fn.hash, name: fn.name, source: fn.source }, args: built.args, contains: built.contains, options },
    });
    this.#heldByNode.add(returnId);
    return new ObjectRef(returnId, this.sessionId);
  }

  async wait(refs: readonly ObjectRef[], numReturns: number, timeoutMs: number | null): Promise<WaitResult> {
    const ready = new Set(
      await this.#request<string[]>({ type: 'wait', ids: refs.map((ref) => ref.id), numReturns, timeoutMs }),
    );
    return { ready: refs.filter((ref) => ready.has(ref.id)), pending: refs.filter((ref) => !ready.has(ref.id)) };
  }

  cancel(ref: ObjectRef): void {
    this.#connection.send({ type: 'cancel', id: ref.id });
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
      this.#heldByNode.add(found.id);
      const ref = new ObjectRef<T>(found.id, this.sessionId);
      try {
        const value = this.#materialize(found.id, found.location ?? { kind: 'freed' }) as T;
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

  async shutdown(): Promise<void> {
    if (this.kind === 'worker') {
      throw new ShoalError('ERR_NOT_AVAILABLE', 'shutdown() cannot be called inside a task; the driver shuts Shoal down.');
    }
    // An attached process only disconnects: the node and its objects belong to another process.
    this.#connection.destroy();
    this.closed();
  }

  // ---- plumbing ---------------------------------------------------------------------------

  #assertWelcomed(operation: string): void {
    if (this.#welcomed) {
      throw new ShoalError(
        'ERR_NOT_CONNECTED',
        `Cannot ${operation} before the node accepted this program: \`await init({ address, token })\` first.`,
      );
    }
  }

  #request<T>(message: Request): Promise<T> {
    if (this.#closed) return Promise.reject(new RuntimeShutdownError('The connection to the Shoal node is closed'));
    const requestId = this.#nextRequest++;
    return new Promise<T>((resolve, reject) => {
      this.#requests.set(requestId, { resolve: resolve as (value: unknown) => void, reject });
      this.#setAwaited(1);
      this.#connection.send({ ...message, requestId });
    });
  }

  #track(ref: ObjectRef): void {
    // Refs made by other nodes count too: this node may hold a copy fetched for this process.
    const count = this.#counts.get(ref.id) ?? 0;
    this.#counts.set(ref.id, count + 1);
    this.#dropped.register(ref, ref.id, ref);
    if (count === 0 && !this.#heldByNode.delete(ref.id)) {
      this.#holds.push(ref.id);
      this.#scheduleRefs();
    }
  }

  #untrack(id: string): void {
    const count = this.#counts.get(id);
    if (count === undefined) return;
    if (count > 1) {
      this.#counts.set(id, count - 1);
      return;
    }
    this.#counts.delete(id);
    // No ref to it remains here: do not keep its mapping cached (views still keep it alive).
    this.#segments.forget([id]);
    this.#releases.push(id);
    this.#scheduleRefs();
  }

  #scheduleRefs(): void {
    if (this.#refsFlushScheduled) return;
    this.#refsFlushScheduled = true;
    // After the current tick, so a put or submit message precedes the hold of its ref.
    setImmediate(() => {
      this.#refsFlushScheduled = false;
      const hold = this.#holds;
      const release = this.#releases;
      this.#holds = [];
      this.#releases = [];
      if (hold.length > 0 || release.length > 0) this.#connection.send({ type: 'refs', hold, release });
    });
  }
}

