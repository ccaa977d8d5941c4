import { debuglog } from 'node:util';
import {
  ActorDiedError,
  ObjectFreedError,
  TaskCancelledError,
  TaskError,
  decodeThrown,
  type ActorDeathReason,
  type ActorEnd,
  type ObjectPayload,
  type WireActorOptions,
  type WireArg,
} from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';
import type { FunctionSource } from '../api/function-source.js';
import type { ResolvedRuntimeEnv } from '../options.js';
import type { LocalScheduler } from '../scheduling/local-scheduler.js';
import type { Resources } from '../scheduling/resources.js';
import type { WorkerHandle } from '../workers/worker-handle.js';
import { awaitCallArgs, holdCallArgs } from './call-args.js';
import type { ObjectService } from './object-service.js';
import type { Peer } from './peer.js';
import type { StreamProducer, StreamService } from './streams.js';

const debug = debuglog('shoal:node');

/** A call on an actor, from submission until its result settles. */
export interface ActorCall {
  /** Its number on the actor's process (`call`, `done`, `failed`, `stream-item`). */
  taskId: number;
  readonly returnId: string;
  readonly method: string;
  readonly args: readonly WireArg[];
  readonly deps: readonly string[];
  readonly contains: readonly string[];
  /** Dependencies not settled yet: it is sent once none are (and every call before it was). */
  unsettled: number;
  /** Times it was sent to a process of the actor. */
  attempts: number;
  /** A call of an async generator method: its items stream. */
  readonly stream: boolean;
  readonly actor: string;
}

/** What an actor is made of, as its creator sent it. */
export interface ActorSpec {
  readonly id: string;
  readonly cls: FunctionSource;
  readonly methods: readonly string[];
  readonly args: readonly WireArg[];
  readonly contains: readonly string[];
  readonly options: WireActorOptions;
}

/** Lifecycle of an actor: waiting for resources or arguments, its process starting, alive, dead; or running on another node of the cluster (`remote`: this node made it and holds its lifetime). */
type ActorState = 'pending' | 'starting' | 'alive' | 'dead' | 'remote';

/** A call on an actor that does not run on this node, as handed to the cluster. */
export interface RemoteCall {
  readonly caller: Peer | undefined;
  readonly actorId: string;
  readonly returnId: string;
  readonly method: string;
  readonly args: readonly WireArg[];
  readonly contains: readonly string[];
}

/** What a live actor is, as a lookup by name answers. */
export interface FoundActor {
  readonly id: string;
  readonly className: string;
  readonly methods: readonly string[];
}

/**
 * What the actors of a node that joined a cluster do through it (cluster-actors.ts). Without
 * one the node is a cluster of one: an actor that fits nowhere here is infeasible, and a call on
 * an actor not here fails as not here.
 */
export interface ActorCluster {
  /** An actor that no resource of this node fits: the head places it on another node. False: no head now. */
  place(spec: ActorSpec): boolean;
  /** This node runs the actor (`origin`: the node holding its lifetime, undefined: this one). */
  hosted(spec: ActorSpec, origin: string | undefined): void;
  /** An actor that ran here is dead for good. */
  ended(actorId: string, death: ActorDiedError): void;
  /** Ends an actor that runs on another node (or only its process: `restart`). */
  end(actorId: string, why: ActorEnd): void;
  /** A call on an actor that does not run here; `done` once its result settled. */
  call(call: RemoteCall, done: () => void): void;
  /** The live actor of this name on another node, if any. */
  lookup(name: string): Promise<FoundActor | undefined>;
  /** Whether calls on the actor wait in the cluster's queue (it was restarted here meanwhile: later calls go behind them). */
  queued(actorId: string): boolean;
}

interface Actor extends ActorSpec {
  readonly deps: readonly string[];
  /** Who created it: it dies with them unless detached (undefined: this node's own driver). */
  readonly creator: Peer | undefined;
  state: ActorState;
  process: WorkerHandle | undefined;
  restarts: number;
  /** Calls not sent yet, in submission order. */
  readonly waiting: ActorCall[];
  /** Calls sent to its process and not finished, by task id (in the order sent). */
  readonly sent: Map<number, ActorCall>;
  nextTaskId: number;
  /** Why it is dead, for every call from then on. */
  death: ActorDiedError | undefined;
  /** Why its process is being killed on purpose (the exit then says this, not a signal). */
  ending: { readonly reason: ActorDeathReason; readonly restart: boolean } | undefined;
  /** Resources held while it lives (once placed). */
  held: Readonly<Resources> | undefined;
  /** Whether it holds its constructor's arguments (and, detached, its own lifetime object). */
  holding: boolean;
  /** While it waits for its resources: stops waiting. */
  unplace: (() => void) | undefined;
  /** Its methods, each with whether it streams (an async generator: `*name` in `methods`). */
  readonly streaming: ReadonlyMap<string, boolean>;
  /** Run here for another node of the cluster (the head placed it here): that node holds its lifetime. */
  readonly origin: string | undefined;
}

/** The node's parts an {@link ActorService} uses. */
export interface ActorServiceParts {
  readonly store: ObjectStore;
  readonly objects: ObjectService;
  readonly scheduler: LocalScheduler;
  /** Starts a worker process of the actor's own (in its runtimeEnv); `exited` hears when it exits. */
  spawn(exited: (worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null) => void, runtimeEnv: ResolvedRuntimeEnv | undefined): WorkerHandle;
  /** The node's streams: a call of an async generator method streams its items there. */
  readonly streams: StreamService;
  /** Called as each call is submitted and as each ends (`alive`: calls remain). */
  keepAlive(alive: boolean): void;
}

/**
 * The actors of this node: each an instance of a class living in a worker process of its own,
 * with its queue of calls. Calls run in the order they reached the node (so those of one caller
 * in its submission order), a call waiting for its arguments holding back the ones behind it; its
 * process runs up to `maxConcurrency` at once. An actor lives until it is killed, its creator
 * exits (unless detached), no ref to its lifetime object remains (unless detached), or its
 * process dies past `maxRestarts`; see docs/internals.md ("Actors").
 */
export class ActorService {
  readonly #parts: ActorServiceParts;
  /** Live and dead actors by id (a dead one stays while handles to it exist, to say why). */
  readonly #actors = new Map<string, Actor>();
  readonly #byProcess = new Map<WorkerHandle, Actor>();
  readonly #names = new Map<string, Actor>();
  /** Calls sent to a process and not finished, by result id (a reserve, a stream's credit finds its call). */
  readonly #sentByResult = new Map<string, ActorCall>();
  /** Calls not finished, over every actor (the process is kept alive while any). */
  #pending = 0;
  #closed = false;
  /** Set once the node joined a cluster. */
  cluster: ActorCluster | undefined;

  constructor(parts: ActorServiceParts) {
    this.#parts = parts;
    // The lifetime object is gone: no handle to the actor remains anywhere.
    parts.store.on('gone', (id) => this.#lifetimeEnded(id));
  }

  /** Actors of this node that live (starting or running here, or waiting to be placed). */
  live(): number {
    let count = 0;
    for (const actor of this.#actors.values()) if (actor.state !== 'dead' && actor.state !== 'remote') count += 1;
    return count;
  }

  /** Whether `id` is the id of an actor this node knows (live or dead). */
  knows(id: string): boolean {
    return this.#actors.has(id);
  }

  /** Whether the actor runs here and its method `method` streams (undefined: no such actor here, or no such method). */
  streams(actorId: string, method: string): boolean | undefined {
    const actor = this.#actors.get(actorId);
    return actor && actor.state !== 'remote' ? actor.streaming.get(method) : undefined;
  }

  /** The actor living in `worker`, if it is an actor's process. */
  ownerOf(worker: WorkerHandle): string | undefined {
    return this.#byProcess.get(worker)?.id;
  }

  /**
   * Who gets the output of the actor living in `worker` (or, given an actor id, of an actor this
   * node made that runs elsewhere): its creator (undefined: this node's own driver), or for an
   * actor run here for another node, that node (`origin`).
   */
  outputOf(which: WorkerHandle | string): { readonly id: string; readonly name: string; readonly creator: Peer | undefined; readonly origin: string | undefined } | undefined {
    const actor = typeof which === 'string' ? this.#actors.get(which) : this.#byProcess.get(which);
    return actor && { id: actor.id, name: actor.cls.name, creator: actor.creator, origin: actor.origin };
  }

  /** Pids of actors' processes (for tests and status). */
  pids(): number[] {
    return [...this.#byProcess.keys()].filter((worker) => worker.state !== 'dead').map((worker) => worker.pid);
  }

  /**
   * Creates an actor (`creator` undefined: the node's own driver). Its failures show in its
   * calls. `placed`: the head placed it here for another node (which holds its lifetime), after
   * `restarts` restarts elsewhere.
   */
  create(creator: Peer | undefined, spec: ActorSpec, placed?: { readonly origin: string; readonly restarts: number }): void {
    const { store } = this.#parts;
    if (this.#actors.has(spec.id)) return;
    const deps = spec.args.flatMap((arg) => ('ref' in arg ? [arg.ref] : []));
    const actor: Actor = {
      ...spec,
      deps,
      creator,
      state: 'pending',
      process: undefined,
      restarts: 0,
      waiting: [],
      sent: new Map(),
      nextTaskId: 1,
      death: undefined,
      ending: undefined,
      held: undefined,
      unplace: undefined,
      holding: false,
      streaming: new Map(spec.methods.map((entry) => (entry.startsWith('*') ? [entry.slice(1), true] : [entry, false]))),
      origin: placed?.origin,
    };
    if (placed) actor.restarts = placed.restarts;
    this.#actors.set(spec.id, actor);
    if (this.#closed) return this.#die(actor, { kind: 'node-closed' });
    // Its constructor's arguments stay for restarts; a detached actor holds its own lifetime object
    // (one placed here for another node has it there).
    for (const id of spec.contains) store.hold(id);
    const missing = deps.filter((id) => !store.hold(id));
    if (spec.options.detached && !placed) store.hold(spec.id);
    actor.holding = true;
    const name = spec.options.name;
    if (name !== undefined) {
      const other = this.#names.get(name);
      if (other && other.state !== 'dead') return this.#die(actor, { kind: 'name-taken', name });
      this.#names.set(name, actor);
    }
    if (missing.length > 0) {
      return this.#die(actor, { kind: 'constructor', message: new ObjectFreedError(missing[0]!, ' before the actor that takes it was made').message });
    }
    this.#placeHere(actor, placed !== undefined);
  }

  /** Holds the actor's resources here (it waits for them), then starts it; or has the head place it on another node when none here fits. */
  #placeHere(actor: Actor, placedByHead: boolean): void {
    const demand: Resources = { ...actor.options.resources };
    if (actor.options.numCpus > 0) demand.CPU = actor.options.numCpus;
    // Placed like a task of a CPU, held like nothing (unless it asks for CPUs), as in Ray.
    const placement: Resources = { CPU: Math.max(1, actor.options.numCpus), ...actor.options.resources };
    const waiting = this.#parts.scheduler.holdForActor(demand, placement, () => {
      actor.unplace = undefined;
      actor.held = demand;
      this.#whenArgumentsReady(actor);
    });
    if ('infeasible' in waiting) {
      // Another node of the cluster may fit it (not one the head chose: it was chosen to fit).
      if (!placedByHead && this.cluster?.place(actor)) {
        actor.state = 'remote';
        return;
      }
      return this.#die(actor, { kind: 'infeasible', detail: waiting.infeasible });
    }
    if (actor.held === undefined) actor.unplace = waiting.cancel;
    this.cluster?.hosted(actor, actor.origin);
  }

  /** The head placed an actor here for node `origin` (its arguments are here or on their way). */
  host(origin: string, spec: ActorSpec, restarts: number): void {
    const record = this.#actors.get(spec.id);
    if (record?.state === 'remote') {
      // Made here, and restarted here now: its record (and lifetime) is here already.
      record.restarts = restarts;
      record.state = 'pending';
      this.#placeHere(record, true);
      return;
    }
    this.create(undefined, spec, { origin, restarts });
  }

  /** Tells the cluster again of every actor running here (the head forgot them: it restarted). */
  announce(): void {
    for (const actor of this.#actors.values()) {
      if (actor.state !== 'dead' && actor.state !== 'remote') this.cluster?.hosted(actor, actor.origin);
    }
  }

  /**
   * The head ends an actor (`death`: why, for its calls): only its process when `restart`, else
   * for good. Also how an actor this node made, running elsewhere, learns it is dead.
   */
  ended(actorId: string, death: ActorDiedError, restart: boolean): void {
    const actor = this.#actors.get(actorId);
    if (!actor || actor.state === 'dead') return;
    if (restart) return this.kill(actorId, false);
    this.#die(actor, death.reason, death);
  }

  #whenArgumentsReady(actor: Actor): void {
    let unsettled = actor.deps.length;
    if (unsettled === 0) return this.#start(actor);
    for (const id of actor.deps) {
      this.#parts.store.onSettled(id, () => {
        if (--unsettled === 0 && actor.state === 'pending') this.#start(actor);
      });
    }
  }

  /** Starts (or restarts) the actor's process; it is told to construct the instance once it connects. */
  #start(actor: Actor): void {
    for (const id of actor.deps) {
      const status = this.#parts.store.status(id);
      if (status.state === 'failed') return this.#die(actor, { kind: 'constructor', message: status.error.message });
    }
    actor.state = 'starting';
    try {
      const worker = this.#parts.spawn((dead, code, signal) => this.#exited(actor, dead, code, signal), actor.options.runtimeEnv);
      actor.process = worker;
      this.#byProcess.set(worker, actor);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#die(actor, { kind: 'spawn-failed', message });
    }
  }

  /** The actor's process connected: it constructs the instance. */
  connected(worker: WorkerHandle): void {
    const actor = this.#byProcess.get(worker);
    if (!actor || actor.state !== 'starting') return;
    const { objects } = this.#parts;
    const args = actor.args.map((arg): WireArg => ('ref' in arg ? { ref: arg.ref, location: objects.locateArgument(arg.ref, worker, true) } : arg));
    worker.send({
      type: 'actor-init',
      actorId: actor.id,
      cls: { hash: actor.cls.hash, name: actor.cls.name, source: actor.cls.source },
      args,
      maxConcurrency: actor.options.maxConcurrency,
      streamWindow: actor.options.streamWindow,
    });
  }

  /** The actor's constructor returned (`error` undefined) or threw. */
  initialized(worker: WorkerHandle, error: Uint8Array | undefined): void {
    const actor = this.#byProcess.get(worker);
    if (!actor || actor.state !== 'starting') return;
    if (error !== undefined) {
      const thrown = decodeThrown(error);
      const message = thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown);
      // Not restarted: the constructor would throw again.
      return this.#die(actor, { kind: 'constructor', message });
    }
    actor.state = 'alive';
    debug('actor %s (%s) is alive in process %d', actor.id, actor.cls.name, worker.pid);
    this.#pump(actor);
  }

  /** The live actor named `name` on this node, if any. */
  named(name: string): ActorSpec | undefined {
    const actor = this.#names.get(name);
    return actor && actor.state !== 'dead' && actor.state !== 'remote' ? actor : undefined;
  }

  /** The live actor named `name`, on this node or (asking the head) another one of the cluster. */
  async lookup(name: string): Promise<FoundActor | undefined> {
    const here = this.named(name);
    if (here) return { id: here.id, className: here.cls.name, methods: here.methods };
    return this.cluster?.lookup(name);
  }

  /**
   * Submits a call by `caller` (undefined: this node's driver); its result becomes `returnId`
   * (expected by the caller already). A call of an async generator method streams its items
   * (see StreamService), read by its caller. An actor running on another node is called there
   * (through the cluster), unless `here`: a call another node sent, for an actor it found here.
   */
  call(caller: Peer | undefined, actorId: string, returnId: string, method: string, args: readonly WireArg[], contains: readonly string[], here = false): void {
    const { store } = this.#parts;
    const actor = this.#actors.get(actorId);
    const cluster = this.cluster;
    if ((!actor || actor.state === 'remote' || cluster?.queued(actorId)) && cluster && !here) {
      // It runs on another node (made there, or made here and placed there).
      // A pending call keeps its actor alive, though its caller dropped the handle.
      const held = store.hold(actorId);
      this.#addPending(1);
      cluster.call({ caller, actorId, returnId, method, args, contains }, () => {
        this.#addPending(-1);
        if (held) store.release(actorId);
      });
      return;
    }
    if (!actor || actor.state === 'remote') {
      // Only a handle's holder can call, and a handle keeps the record: a forged id, or the
      // handle of an actor of another node when this node is not in a cluster.
      store.fail(returnId, new ActorDiedError(actorId, { kind: 'not-here' }, 0));
      return;
    }
    const stream = actor.streaming.get(method);
    // Opened first: a call that fails at once ends its stream with that failure.
    if (stream) this.#parts.streams.open(returnId, actor.options.streamWindow, caller);
    if (actor.death) {
      store.fail(returnId, actor.death);
      return;
    }
    if (stream === undefined) {
      store.fail(returnId, new TaskError(`${actor.cls.name}.${method}`, new TypeError(`Actor ${actor.cls.name} has no method ${method}`)));
      return;
    }
    const deps = args.flatMap((arg) => ('ref' in arg ? [arg.ref] : []));
    const call: ActorCall = { taskId: 0, returnId, method, args, deps, contains, unsettled: 0, attempts: 0, stream, actor: actorId };
    // A pending call keeps its actor alive, though its caller dropped the handle.
    store.hold(actorId);
    const missing = holdCallArgs(store, deps, contains);
    this.#addPending(1);
    if (missing !== undefined) {
      this.#settle(call, new ObjectFreedError(missing, ` before the call ${actor.cls.name}.${method} that takes it could start`));
      return;
    }
    actor.waiting.push(call);
    awaitCallArgs(store, call, deps, () => this.#pump(actor));
    if (actor.waiting.length === 1) this.#pump(actor);
  }

  /** Sends the calls at the head of the queue whose arguments are ready, in order. */
  #pump(actor: Actor): void {
    const worker = actor.process;
    if (actor.state !== 'alive' || !worker) return;
    const { objects, store } = this.#parts;
    while (actor.waiting.length > 0 && actor.waiting[0]!.unsettled === 0) {
      const call = actor.waiting.shift()!;
      const failed = call.deps.map((id) => store.status(id)).find((status) => status.state === 'failed' || status.state === 'freed');
      if (failed) {
        this.#settle(call, failed.state === 'failed' ? failed.error : new ObjectFreedError(call.deps[0]!, ` before the call ${actor.cls.name}.${call.method} could start`));
        continue;
      }
      call.taskId = actor.nextTaskId++;
      call.attempts += 1;
      actor.sent.set(call.taskId, call);
      this.#sentByResult.set(call.returnId, call);
      // Its arguments stay in memory while it is on the actor's process.
      for (const id of call.deps) objects.pin(id);
      const args = call.args.length === 0 ? call.args : call.args.map((arg): WireArg => ('ref' in arg ? { ref: arg.ref, location: objects.locateArgument(arg.ref, worker, true) } : arg));
      worker.send({ type: 'call', taskId: call.taskId, returnId: call.returnId, method: call.method, args, stream: call.stream });
    }
  }

  /** The call `taskId` on the actor in `worker`, if it is running there. */
  callOf(worker: WorkerHandle, taskId: number): ActorCall | undefined {
    return this.#byProcess.get(worker)?.sent.get(taskId);
  }

  /** Where the streaming call whose result is `returnId` runs now (its credits go there). */
  producerOf(returnId: string): StreamProducer | undefined {
    const call = this.#sentByResult.get(returnId);
    const worker = call?.stream ? this.#actors.get(call.actor)?.process : undefined;
    return call && worker ? { taskId: call.taskId, send: (message) => worker.send(message) } : undefined;
  }

  /**
   * The result id of a streaming call the actor in `worker` runs (it may reserve room for its
   * items, within that stream's credit), if any.
   */
  streamingCallOf(worker: WorkerHandle): string | undefined {
    const actor = this.#byProcess.get(worker);
    if (!actor) return undefined;
    for (const call of actor.sent.values()) if (call.stream && this.#parts.streams.grant(call.returnId)) return call.returnId;
    return undefined;
  }

  /** Whether `worker` runs a call whose result is `id` (it may reserve room for it). */
  writes(worker: WorkerHandle, id: string): boolean {
    const call = this.#sentByResult.get(id);
    return call !== undefined && this.#byProcess.get(worker)?.id === call.actor;
  }

  /** The call `taskId` returned: its result is stored. */
  done(worker: WorkerHandle, taskId: number, result: ObjectPayload): void {
    const call = this.#take(worker, taskId);
    if (!call) return;
    const { store, objects } = this.#parts;
    objects.written(call.returnId);
    if (store.status(call.returnId).state === 'pending') {
      try {
        store.register(call.returnId, result);
      } catch (error) {
        store.fail(call.returnId, error as Error);
      }
    } else store.discardUnclaimed(call.returnId);
    this.#settle(call);
  }

  /** The call `taskId` threw (`error` encoded), or its result was refused room. */
  failed(worker: WorkerHandle, taskId: number, error: Uint8Array): void {
    const actor = this.#byProcess.get(worker);
    const call = this.#take(worker, taskId);
    if (!actor || !call) return;
    const refusal = this.#parts.objects.refused(call.returnId);
    this.#settle(call, refusal ?? new TaskError(`${actor.cls.name}.${call.method}`, decodeThrown(error)));
  }

  #take(worker: WorkerHandle, taskId: number): ActorCall | undefined {
    const actor = this.#byProcess.get(worker);
    const call = actor?.sent.get(taskId);
    if (!actor || !call) return undefined;
    actor.sent.delete(taskId);
    this.#sentByResult.delete(call.returnId);
    for (const id of call.deps) this.#parts.objects.letGo(id);
    return call;
  }

  /** The call is over: its result failed with `error` (unless given, it is stored already), its holds go. */
  #settle(call: ActorCall, error?: Error): void {
    const { store } = this.#parts;
    if (error) store.fail(call.returnId, error);
    for (const id of call.deps) store.release(id);
    for (const id of call.contains) store.release(id);
    this.#addPending(-1);
    // Last: it may have been what kept the actor alive.
    store.release(call.actor);
  }

  /**
   * Drops the call whose result is `returnId` if it has not started (cancelled, or its stream
   * closed): one still here at once; one sent to the actor's process is recalled from its queue
   * (see {@link recalled}). A call the actor runs already goes on.
   */
  cancel(returnId: string): void {
    const sent = this.#sentByResult.get(returnId);
    if (sent) {
      const process = this.#actors.get(sent.actor)?.process;
      if (sent.taskId !== undefined && process) process.send({ type: 'recall', taskIds: [sent.taskId] });
      return;
    }
    for (const actor of this.#actors.values()) {
      const index = actor.waiting.findIndex((call) => call.returnId === returnId);
      if (index < 0) continue;
      const [call] = actor.waiting.splice(index, 1);
      this.#settle(call!, new TaskCancelledError(`${actor.cls.name}.${call!.method}`));
      this.#pump(actor);
      return;
    }
  }

  /** The actor's process gave back calls it had queued and not started: they are cancelled. */
  recalled(worker: WorkerHandle, taskIds: readonly number[]): void {
    const actor = this.#byProcess.get(worker);
    for (const taskId of taskIds) {
      const call = this.#take(worker, taskId);
      if (actor && call) this.#settle(call, new TaskCancelledError(`${actor.cls.name}.${call.method}`));
    }
  }

  /**
   * Kills the actor: for good (`noRestart`: every call fails with ActorDiedError saying it was
   * killed), or only its process, which restarts within `maxRestarts`.
   */
  kill(actorId: string, noRestart: boolean): void {
    const actor = this.#actors.get(actorId);
    if (!actor || actor.state === 'remote') {
      // It runs on another node: the head ends it there.
      this.cluster?.end(actorId, noRestart ? 'killed' : 'restart');
      if (actor && noRestart) this.#die(actor, { kind: 'killed' }, undefined, true);
      return;
    }
    if (actor.state === 'dead') return;
    if (noRestart) {
      this.#die(actor, { kind: 'killed' });
      return;
    }
    // Only its process (none yet while it waits to be placed: nothing to do).
    if (!actor.process) return;
    actor.ending = { reason: { kind: 'killed' }, restart: true };
    actor.process.kill();
  }

  /** The process of `actor` exited: calls on it are retried or fail; it restarts if it may. */
  #exited(actor: Actor, worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    this.#byProcess.delete(worker);
    if (actor.process === worker) actor.process = undefined;
    const ending = actor.ending;
    actor.ending = undefined;
    const reason: ActorDeathReason = ending?.reason ?? { kind: 'exited', exitCode: code, signal };
    const restart = actor.state !== 'dead' && !this.#closed && actor.restarts < actor.options.maxRestarts && (ending?.restart ?? true);
    debug('actor %s process %d exited (code %s, signal %s); %s', actor.id, worker.pid, code, signal, restart ? 'restarting' : 'not restarting');
    // What it was running: retried on the restarted instance within maxTaskRetries, else lost.
    const lost = new ActorDiedError(actor.cls.name, reason, actor.restarts, !restart);
    const retried: ActorCall[] = [];
    for (const call of [...actor.sent.values()]) {
      actor.sent.delete(call.taskId);
      this.#sentByResult.delete(call.returnId);
      for (const id of call.deps) this.#parts.objects.letGo(id);
      // It may have died while writing the result: what it wrote goes before a retry writes it anew.
      this.#parts.store.discardUnclaimed(call.returnId);
      // A stream is not run again: its consumer has items of the first run already.
      if (restart && !call.stream && call.attempts <= actor.options.maxTaskRetries) retried.push(call);
      else this.#settle(call, actor.death ?? lost);
    }
    if (actor.state === 'dead') return;
    if (!restart) return this.#die(actor, reason);
    actor.restarts += 1;
    actor.waiting.unshift(...retried);
    actor.state = 'pending';
    this.#start(actor);
  }

  /**
   * The actor is dead for good: every call waiting or to come fails with why (`death`, when the
   * head said it). In a cluster the head is told, unless it is the one that said so (`told`).
   */
  #die(actor: Actor, reason: ActorDeathReason, death?: ActorDiedError, told = death !== undefined): void {
    if (actor.state === 'dead') return;
    const { store, scheduler } = this.#parts;
    const wasRemote = actor.state === 'remote';
    actor.state = 'dead';
    actor.death = death ?? new ActorDiedError(actor.cls.name, reason, actor.restarts);
    // A node shutting down says nothing: it leaves the cluster, and the head then ends what died
    // with it and restarts elsewhere (or keeps, if detached) what may live on.
    if (!told && this.cluster && reason.kind !== 'node-closed') {
      if (wasRemote) this.cluster.end(actor.id, reason.kind === 'out-of-scope' || reason.kind === 'creator-exited' ? reason.kind : 'killed');
      else this.cluster.ended(actor.id, actor.death);
    }
    debug('actor %s (%s) died: %s', actor.id, actor.cls.name, actor.death.message);
    for (const call of actor.waiting.splice(0)) this.#settle(call, actor.death);
    if (actor.process) {
      // Its exit finds the actor dead: what it ran fails with this same reason. A closing node
      // asks its processes to exit (the pool), so their `finally` blocks and exit hooks run.
      actor.ending = { reason, restart: false };
      if (reason.kind !== 'node-closed') actor.process.kill();
    }
    if (actor.options.name !== undefined && this.#names.get(actor.options.name) === actor) this.#names.delete(actor.options.name);
    actor.unplace?.();
    actor.unplace = undefined;
    if (actor.held) scheduler.releaseFromActor(actor.held);
    actor.held = undefined;
    if (!actor.holding) return;
    actor.holding = false;
    // A missing argument was never held, and releasing it again is harmless (it is gone).
    for (const id of actor.contains) store.release(id);
    for (const id of actor.deps) store.release(id);
    // Last: releasing its own lifetime object may delete the record (#lifetimeEnded).
    if (actor.options.detached && actor.origin === undefined) store.release(actor.id);
  }

  /** No ref to the actor's lifetime object remains: an actor not detached dies, and its record goes. */
  #lifetimeEnded(id: string): void {
    const actor = this.#actors.get(id);
    // One placed here for another node has its lifetime object there, never here.
    if (!actor || actor.origin !== undefined) return;
    this.#die(actor, { kind: 'out-of-scope' });
    this.#actors.delete(id);
  }

  /** Kills the actors that `creator` made (it went away), except detached ones. */
  creatorGone(creator: Peer): void {
    for (const actor of this.#actors.values()) {
      if (actor.creator === creator && !actor.options.detached) this.#die(actor, { kind: 'creator-exited' });
    }
  }

  /** The node is closing: every actor dies (the pool kills their processes). */
  close(): void {
    this.#closed = true;
    for (const actor of this.#actors.values()) this.#die(actor, { kind: 'node-closed' });
  }

  /** Calls not finished, over every actor. */
  get pending(): number {
    return this.#pending;
  }

  #addPending(delta: number): void {
    this.#pending += delta;
    this.#parts.keepAlive(this.#pending > 0);
  }
}
