// Actors across the nodes of a cluster, as one node takes part: the head keeps the directory of
// actors (where each runs, its name, whether it died; cluster/head/actor-directory.ts) and places
// the ones their creator's node cannot fit; calls go from the caller's node straight to the node
// the actor runs on, over the data connection (`actor-call`, answered by `actor-result`), and a
// result in a segment is then pulled like any object. See docs/internals.md ("Actors in a cluster").
import { debuglog } from 'node:util';
import {
  ActorDiedError,
  HeadLostError,
  ObjectFreedError,
  TaskError,
  fromWireFailure,
  toWireFailure,
  type ActorEnd,
  type ClusterActor,
  type ClusterArg,
  type ClusterResult,
  type LocatedActor,
  type ToHead,
  type WireFailure,
} from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';
import type { ActorCluster, ActorService, ActorSpec, FoundActor, RemoteCall } from './actors.js';
import { awaitCallArgs, holdCallArgs } from './call-args.js';
import { acceptClusterArgs, clusterArgsOf, clusterResultOf } from './cluster-values.js';

const debug = debuglog('shoal:cluster');

/** How often, and how long apart, a caller asks the head again while it still names the node that just failed. */
const RELOCATE_ATTEMPTS = 60;
const RELOCATE_PAUSE_MS = 250;
/** How long calls wait for a head that does not answer (it restarts, the network blips) before they fail. */
const HEAD_PATIENCE_MS = 30_000;
/** Actors killed from this node that it remembers (its later calls on them fail here at once). */
const KILLED_MEMORY = 1024;
/** Ends and deaths kept for the head while it cannot be told (sent once it registers this node again). */
const OUTBOX_LIMIT = 10_000;

/** A call that never left this node: the connection to the actor's node could not be made (it is gone). */
export class ActorCallNotSent extends Error {
  override readonly name = 'ActorCallNotSent';
}

/** The head's answer to `actor-locate`: where it runs, or why it is dead (neither: unknown). */
export interface ActorWhereabouts {
  readonly actor?: LocatedActor;
  readonly failure?: WireFailure;
  /** No answer: no head connection now, or none in time. */
  readonly unreachable?: boolean;
}

/** What {@link ClusterActors} needs of the node's cluster agent (cluster/node/cluster-node.ts). */
export interface ActorClusterLink {
  /** Sends to the head; false when there is no head connection now. */
  tell(message: ToHead): boolean;
  /** Asks the head where an actor runs (by id, or by name). */
  locate(by: { readonly actorId: string } | { readonly name: string }): Promise<ActorWhereabouts>;
  /**
   * Sends a call to the node whose data server is `url`; rejects when the connection to it
   * failed: with {@link ActorCallNotSent} when the call never went out.
   */
  callActor(url: string, call: { actorId: string; returnId: string; method: string; args: ClusterArg[] }): Promise<ClusterResult>;
  /**
   * Brings the result of a call that ran on the node at `holderUrl` here (and what it refers
   * to); `finish` registers it, `fail` is told when it could not be fetched.
   */
  receive(returnId: string, holderUrl: string, result: ClusterResult, finish: (payload: { size: number; bytes?: Uint8Array; contains: string[] }) => boolean, fail: (error: Error) => void): Promise<void>;
  /** Fetches object `id` (of `size` bytes, made on node `owner`) into this node's store, which expects it. */
  fetch(id: string, size: number, owner: string): void;
}

/** A call on an actor of another node, from its submission until its result settled here. */
interface OutgoingCall extends RemoteCall {
  /** Its place in the order calls were made on this node. */
  readonly seq: number;
  readonly deps: readonly string[];
  /** Dependencies not settled yet: it is sent once none are (and every call before it was). */
  unsettled: number;
  readonly done: () => void;
}

/** An actor of another node that this node calls. */
interface CalledActor {
  readonly id: string;
  /** Where it runs, as the head last said (undefined until it answers, and after that node failed). */
  route: LocatedActor | undefined;
  /** Its class's name, once the head said it. */
  className: string | undefined;
  /** Asking the head where it runs. */
  locating: boolean;
  /** Calls not sent yet, in submission order. */
  readonly queue: OutgoingCall[];
}

/**
 * The node's side of actors in a cluster (it is the node's {@link ActorCluster}):
 * - as a caller, it queues the calls on actors of other nodes in submission order, asks the head
 *   where each actor runs, sends the calls there and stores their results here;
 * - as a host, it runs the calls other nodes send (keeping segment results until their caller
 *   pulled them) and the actors the head places here;
 * - for the head, it reports the actors this node runs and asks it to place or end others.
 */
export class ClusterActors implements ActorCluster {
  readonly #store: ObjectStore;
  readonly #actors: ActorService;
  readonly #link: ActorClusterLink;
  readonly #called = new Map<string, CalledActor>();
  /** Results of calls other nodes sent, held here until their caller has its copy: by id, the data connection the call came on. */
  readonly #kept = new Map<string, object>();
  /**
   * Actors of other nodes killed from here: the kill goes through the head and a later call
   * straight to the actor's node, so the call could get there first; it fails here instead.
   */
  readonly #killed = new Map<string, ActorDiedError>();
  #seq = 0;
  /** What the head must hear and could not be told (no connection): sent by {@link ClusterActors.flush}. */
  #outbox: ToHead[] = [];

  constructor(parts: { readonly store: ObjectStore; readonly actors: ActorService; readonly link: ActorClusterLink }) {
    ({ store: this.#store, actors: this.#actors, link: this.#link } = parts);
  }

  // ---- for the head ---------------------------------------------------------------------------

  place(spec: ActorSpec): boolean {
    return this.#link.tell({ type: 'actor-place', actor: this.#wire(spec) });
  }

  hosted(spec: ActorSpec, origin: string | undefined): void {
    this.#link.tell({ type: 'actor-hosted', origin: origin ?? this.#store.sessionId, actor: this.#wire(spec) });
  }

  ended(actorId: string, death: ActorDiedError): void {
    this.#tellSurely({ type: 'actor-ended', actorId, failure: toWireFailure(death) });
  }

  end(actorId: string, why: ActorEnd): void {
    this.#tellSurely({ type: 'actor-end', actorId, why });
    if (why !== 'killed') return;
    const called = this.#called.get(actorId);
    const death = new ActorDiedError(called?.className ?? actorId, { kind: 'killed' }, 0);
    this.#killed.set(actorId, death);
    for (const oldest of this.#killed.keys()) {
      if (this.#killed.size <= KILLED_MEMORY) break;
      this.#killed.delete(oldest);
    }
    if (called) this.#failQueued(called, death);
  }

  /** Tells the head, or keeps it for when it is back (an end must not be lost: the actor would live on). */
  #tellSurely(message: ToHead): void {
    if (this.#link.tell(message)) return;
    this.#outbox.push(message);
    if (this.#outbox.length > OUTBOX_LIMIT) this.#outbox.shift();
  }

  /** The head registered this node again: what it could not be told is sent now. */
  flush(): void {
    const pending = this.#outbox;
    this.#outbox = [];
    for (const message of pending) this.#tellSurely(message);
  }

  async lookup(name: string): Promise<FoundActor | undefined> {
    const { actor } = await this.#link.locate({ name });
    return actor && { id: actor.id, className: actor.className, methods: actor.methods };
  }

  /** The head placed an actor here for node `origin`: its arguments are fetched, and it starts. */
  host(origin: string, actor: ClusterActor, restarts: number): void {
    const { args } = acceptClusterArgs(this.#store, actor.args, this.#link.fetch);
    const cls = { source: actor.cls.source, hash: actor.cls.hash, name: actor.cls.name };
    this.#actors.host(origin, { id: actor.id, cls, methods: actor.methods, args, contains: [], options: actor.options }, restarts);
  }

  #wire(spec: ActorSpec): ClusterActor {
    const { source, hash, name } = spec.cls;
    return { id: spec.id, cls: { source, hash, name }, methods: [...spec.methods], args: clusterArgsOf(this.#store, spec.args), options: spec.options };
  }

  // ---- as the host: calls other nodes send ------------------------------------------------------

  /** A call another node sent (`actor-call` on its data connection); `answer` once with how it ended. */
  serve(call: { actorId: string; returnId: string; method: string; args: readonly ClusterArg[] }, answer: (result: ClusterResult) => void, connection: object): void {
    const store = this.#store;
    const inUse =
      store.status(call.returnId).state !== 'freed' ||
      this.#kept.has(call.returnId) ||
      this.#actors.knows(call.returnId) ||
      call.args.some((arg) => 'ref' in arg && arg.ref === call.returnId);
    if (inUse) {
      // A result id is new for every call: this one is a caller's mistake (or a forgery).
      answer({ ok: false, failure: toWireFailure(new RangeError(`Expected a new result id, got one in use: ${call.returnId}`)) });
      return;
    }
    if (this.#actors.streams(call.actorId, call.method)) {
      // Its items would stream here, with no consumer: callers refuse these before sending.
      answer({ ok: false, failure: toWireFailure(new TaskError(call.method, new Error('a streaming method cannot be called from another node'))) });
      return;
    }
    const { args, deps } = acceptClusterArgs(store, call.args, this.#link.fetch);
    // Held across the call: the arguments registered or expected for it go again if the call
    // does not take them (no such actor here), instead of staying unreferenced.
    const held = deps.filter((id) => store.hold(id));
    store.expect(call.returnId);
    // Held for the caller until it has its copy (release).
    store.hold(call.returnId);
    this.#kept.set(call.returnId, connection);
    store.onSettled(call.returnId, () => {
      const result = clusterResultOf(store, call.returnId);
      answer(result);
      if (!result.ok) this.release([call.returnId]);
    });
    this.#actors.call(undefined, call.actorId, call.returnId, call.method, args, [], true);
    for (const id of held) store.release(id);
  }

  /** The callers of these results have their copies (or left): stop keeping them. */
  release(ids: readonly string[]): void {
    for (const id of ids) if (this.#kept.delete(id)) this.#store.release(id);
  }

  /**
   * The data connection `connection` closed: results kept for calls made on it go (their caller
   * pulls and releases on the same connection; gone, it never will).
   */
  dropFor(connection: object): void {
    this.release([...this.#kept].filter(([, on]) => on === connection).map(([id]) => id));
  }

  // ---- as a caller: calls on actors of other nodes ------------------------------------------------

  call(request: RemoteCall, done: () => void): void {
    const store = this.#store;
    const killed = this.#killed.get(request.actorId);
    if (killed) {
      store.fail(request.returnId, killed);
      done();
      return;
    }
    let actor = this.#called.get(request.actorId);
    if (!actor) {
      actor = { id: request.actorId, route: undefined, className: undefined, locating: false, queue: [] };
      this.#called.set(actor.id, actor);
    }
    const deps = request.args.flatMap((arg) => ('ref' in arg ? [arg.ref] : []));
    const call: OutgoingCall = { ...request, seq: ++this.#seq, deps, unsettled: 0, done };
    const missing = holdCallArgs(store, deps, request.contains);
    if (missing !== undefined) {
      this.#settle(call, new ObjectFreedError(missing, ` before the call ${request.method} that takes it could start`));
      return;
    }
    actor.queue.push(call);
    awaitCallArgs(store, call, deps, () => this.#pump(actor));
    this.#pump(actor);
  }

  /** Sends the calls at the head of the queue whose arguments are ready, in order, once the head said where the actor runs. */
  #pump(actor: CalledActor, failedNode?: string): void {
    const route = actor.route;
    if (!route) {
      if (actor.queue.length > 0) this.#locate(actor, failedNode);
      return;
    }
    const store = this.#store;
    while (actor.queue.length > 0 && actor.queue[0]!.unsettled === 0) {
      const call = actor.queue.shift()!;
      const failed = call.deps.map((id) => store.status(id)).find((status) => status.state === 'failed' || status.state === 'freed');
      if (failed) {
        this.#settle(call, failed.state === 'failed' ? failed.error : new ObjectFreedError(call.deps[0]!, ` before the call ${route.className}.${call.method} could start`));
        continue;
      }
      const name = `${route.className}.${call.method}`;
      if (route.methods.includes(`*${call.method}`)) {
        // Its consumer's pulls end with this failure (StreamService.pull waits for it).
        this.#settle(call, new TaskError(name, new Error("it streams (an async generator), and streaming from an actor on another node is not supported yet: call it from a task placed on the actor's node, or return an array")));
        continue;
      }
      if (!route.methods.includes(call.method)) {
        this.#settle(call, new TaskError(name, new TypeError(`Actor ${route.className} has no method ${call.method}`)));
        continue;
      }
      if (route.nodeId === store.sessionId) {
        // It was restarted here, with calls still queued: they run here, in their order (the
        // actor's own queue holds them from now on; later calls wait behind these, see queued()).
        this.#actors.call(call.caller, actor.id, call.returnId, call.method, call.args, call.contains, true);
        this.#settle(call);
        continue;
      }
      const wire = { actorId: actor.id, returnId: call.returnId, method: call.method, args: clusterArgsOf(store, call.args) };
      this.#link.callActor(route.dataUrl, wire).then(
        (result) => this.#answered(call, route, result),
        (error: unknown) => this.#lost(actor, call, route, error as Error),
      );
    }
  }

  #answered(call: OutgoingCall, route: LocatedActor, result: ClusterResult): void {
    const store = this.#store;
    void this.#link
      .receive(
        call.returnId,
        route.dataUrl,
        result,
        (payload) => {
          if (store.status(call.returnId).state !== 'pending') return false;
          store.register(call.returnId, payload);
          return true;
        },
        (error) => store.fail(call.returnId, error),
      )
      .finally(() => this.#settle(call));
  }

  /**
   * The connection to the actor's node failed with `call` on it: the node left (or is leaving)
   * the cluster. The call fails once the head says what became of the actor: restarted
   * elsewhere (the call was lost, later calls go there) or dead for good.
   */
  #lost(actor: CalledActor, call: OutgoingCall, route: LocatedActor, error: Error): void {
    debug('call %s on actor %s at %s lost: %s', call.returnId, actor.id, route.dataUrl, error.message);
    if (actor.route === route) actor.route = undefined;
    if (error instanceof ActorCallNotSent) {
      // It never left: back in its place in the queue, for wherever the head says the actor is now.
      const at = actor.queue.findIndex((queued) => queued.seq > call.seq);
      actor.queue.splice(at < 0 ? actor.queue.length : at, 0, call);
      this.#pump(actor, route.nodeId);
      return;
    }
    void this.#whereabouts(actor.id, route.nodeId).then((where) => {
      const lost =
        where.failure || where.unreachable
          ? this.#noAnswer(actor, where, call)
          : new ActorDiedError(route.className, { kind: 'node-died', nodeId: route.nodeId }, 0, where.actor === undefined);
      this.#settle(call, lost);
      if (!actor.route || !where.actor) this.#arrive(actor, where);
    });
  }

  #locate(actor: CalledActor, failedNode?: string): void {
    if (actor.locating) return;
    actor.locating = true;
    void this.#whereabouts(actor.id, failedNode).then((where) => {
      actor.locating = false;
      this.#arrive(actor, where);
    });
  }

  /** The head said where the actor runs (its calls go there) or gave no usable answer (they fail). */
  #arrive(actor: CalledActor, where: ActorWhereabouts): void {
    if (!where.actor) return this.#failQueued(actor, this.#noAnswer(actor, where));
    actor.route = where.actor;
    actor.className = where.actor.className;
    this.#pump(actor);
  }

  /** Whether calls on `actorId` wait here to be sent (a call made now goes behind them). */
  queued(actorId: string): boolean {
    return (this.#called.get(actorId)?.queue.length ?? 0) > 0;
  }

  /**
   * Where the head says the actor runs. Right after a node failed the head may not know yet (it
   * hears of a dead node when its connection drops or its heartbeats stop): while it still names
   * `failedNode`, this asks again a little later.
   */
  async #whereabouts(actorId: string, failedNode?: string): Promise<ActorWhereabouts> {
    const giveUp = Date.now() + HEAD_PATIENCE_MS;
    for (let attempt = 1; ; attempt++) {
      const where = await this.#link.locate({ actorId }).catch((error: unknown): ActorWhereabouts => {
        debug('locating actor %s failed: %s', actorId, (error as Error).message);
        return { unreachable: true };
      });
      if (where.unreachable) {
        if (Date.now() >= giveUp) return where;
      } else if (failedNode === undefined || where.actor?.nodeId !== failedNode) {
        return where;
      } else if (attempt >= RELOCATE_ATTEMPTS) {
        return {};
      }
      await new Promise((resolve) => setTimeout(resolve, RELOCATE_PAUSE_MS));
    }
  }

  /** Why calls on `actor` fail when the head gave no usable answer. */
  #noAnswer(actor: CalledActor, where: ActorWhereabouts, call?: OutgoingCall): Error {
    if (where.failure) return fromWireFailure(where.failure);
    const name = actor.className ?? actor.id;
    if (where.unreachable) {
      return new HeadLostError(name, `A call on actor ${name}${call ? ` (${call.method})` : ''} could not be sent: the head, which says where the actor runs, did not answer for ${HEAD_PATIENCE_MS / 1000} s. Call it again once the head is back.`);
    }
    return new ActorDiedError(name, { kind: 'not-here' }, 0);
  }

  /** Node `nodeId` left the cluster: calls on the actors it ran go wherever the head says they are now. */
  nodeLeft(nodeId: string): void {
    for (const actor of this.#called.values()) if (actor.route?.nodeId === nodeId) actor.route = undefined;
  }

  /** The actor is dead (or unknown): every call queued for it fails with `error`, and it is forgotten. */
  #failQueued(actor: CalledActor, error: Error): void {
    for (const call of actor.queue.splice(0)) this.#settle(call, error);
    if (this.#called.get(actor.id) === actor && !actor.locating) this.#called.delete(actor.id);
  }

  /** The call is over: its result failed with `error` (unless given, it is stored already), its holds go. */
  #settle(call: OutgoingCall, error?: Error): void {
    const store = this.#store;
    if (error && store.status(call.returnId).state === 'pending') store.fail(call.returnId, error);
    for (const id of call.deps) store.release(id);
    for (const id of call.contains) store.release(id);
    call.done();
  }
}
