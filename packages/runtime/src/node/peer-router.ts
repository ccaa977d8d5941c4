import { decodeThrown, encodeError, type OutputStream, type WireArg, type WireTask, type WorkerToNode } from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';
import type { LocalScheduler } from '../scheduling/local-scheduler.js';
import { WorkerHandle } from '../workers/worker-handle.js';
import type { ActorService, FoundActor } from './actors.js';
import type { CollectionRound } from './collection-round.js';
import type { StreamService } from './streams.js';
import type { NameRegistry } from './names.js';
import type { ObjectService } from './object-service.js';
import type { Peer } from './peer.js';
import type { RefHolds } from './ref-holds.js';

/** The node's parts a peer's messages reach. */
export interface RouterServices {
  readonly store: ObjectStore;
  readonly scheduler: LocalScheduler;
  readonly objects: ObjectService;
  readonly holds: RefHolds;
  readonly names: NameRegistry;
  readonly collection: CollectionRound;
  readonly actors: ActorService;
  readonly streams: StreamService;
  /** A task submitted by a peer (a nested task, or one from an attached program). */
  submit(peer: Peer, task: WireTask): void;
  /** A peer cancels what makes object `id` (a task, or a queued actor call). */
  cancel(id: string): void;
  /** Arguments of an actor's constructor or call: in a cluster, those made by other nodes are fetched. */
  fetchArguments(args: readonly WireArg[]): void;
  /** What a worker (or an actor's process) wrote to its stdout or stderr. */
  output(worker: WorkerHandle, stream: OutputStream, text: string): void;
}

/**
 * Turns each message from a worker or an attached program into a call on the node's parts. It
 * decides nothing itself: every rule lives in the part it calls.
 */
export class PeerRouter {
  readonly #services: RouterServices;

  constructor(services: RouterServices) {
    this.#services = services;
  }

  route(peer: Peer, message: WorkerToNode): void {
    // Task outcomes only ever come from workers; an actor's process reports its calls.
    if (peer instanceof WorkerHandle) {
      if (message.type === 'output') return this.#services.output(peer, message.stream, message.text);
      if (this.#services.actors.ownerOf(peer) !== undefined ? this.#fromActor(peer, message) : this.#fromWorker(peer, message)) return;
    }
    this.#common(peer, message);
  }

  /** Messages only an actor's process sends; false for the others. */
  #fromActor(worker: WorkerHandle, message: WorkerToNode): boolean {
    const { actors, streams } = this.#services;
    switch (message.type) {
      case 'actor-ready':
        actors.initialized(worker, undefined);
        return true;
      case 'actor-failed':
        actors.initialized(worker, message.error);
        return true;
      case 'done':
        actors.done(worker, message.taskId, message.result);
        return true;
      case 'failed':
        actors.failed(worker, message.taskId, message.error);
        return true;
      case 'recalled':
        actors.recalled(worker, message.taskIds);
        return true;
      case 'stream-item':
        this.#streamItem(worker, actors.callOf(worker, message.taskId)?.returnId, message);
        return true;
      case 'stream-wait':
        this.#streamWait(worker, actors.callOf(worker, message.taskId)?.returnId, message.requestId, message.index);
        return true;
      case 'reserve': {
        // Room for a result of a call it runs, or for an item of a streaming call it runs (a new object, within its credit).
        const streaming = actors.streamingCallOf(worker);
        const result = actors.writes(worker, message.id);
        const ours = message.size > 0 && (result || (streaming !== undefined && this.#isNew(message.id) && streams.grant(streaming, message.id)));
        this.#answerReserve(worker, message.requestId, message.id, message.size, ours, !result);
        return true;
      }
      default:
        return false;
    }
  }

  /** Whether no object `id` exists here (an item id a streaming producer made up). */
  #isNew(id: string): boolean {
    return this.#services.store.status(id).state === 'freed';
  }

  /**
   * An item a streaming task or call of `worker` (whose result is `returnId`) yielded: stored if
   * it is the next one of an open stream, within its credit, under a new id (or one room was
   * granted for); otherwise refused, and what the worker wrote under its grant discarded.
   */
  #streamItem(worker: WorkerHandle, returnId: string | undefined, message: Extract<WorkerToNode, { type: 'stream-item' }>): void {
    const { objects, streams } = this.#services;
    const granted = objects.isGrantedTo(worker, message.id);
    if (returnId === undefined || !streams.accepts(returnId, message.index, message.id, granted)) {
      objects.discardGrant(worker, message.id);
      streams.ungrant(message.id);
      return;
    }
    objects.written(message.id);
    streams.item(returnId, message.index, message.id, message.result, granted);
  }

  /** A streaming producer of `worker` at the end of its credit: answered once the consumer took enough (its CPUs lent meanwhile). */
  #streamWait(worker: WorkerHandle, returnId: string | undefined, requestId: number, index: number): void {
    const reply = (go: { upTo: number; stop: boolean }) => worker.send({ type: 'stream-go', requestId, upTo: go.upTo, stop: go.stop });
    const go = returnId === undefined ? { upTo: index, stop: true } : this.#services.streams.waitForCredit(returnId, index);
    if (!(go instanceof Promise)) return reply(go);
    // Paused, not blocked: its CPU is lent, but it does not make the node start workers past maxWorkers.
    worker.pausedStreams += 1;
    this.#services.scheduler.whileBlocked(worker, [returnId!], go, (answer) => {
      worker.pausedStreams -= 1;
      reply(answer);
    });
  }

  #answerReserve(worker: WorkerHandle, requestId: number, id: string, size: number, ours: boolean, item = false): void {
    // A grant is charged to an object id, and one for a stranger's id would take or replace another writer's room.
    const answer = ours
      ? this.#services.objects.reserve(worker, id, size)
      : Promise.resolve<{ error?: Uint8Array; lent?: string }>({
          error: encodeError(new RangeError(`A worker may reserve room only for the result of a task it runs (object ${id}, ${size} bytes)`)),
        });
    // The answer carries `error` or `lent` only when they are set.
    void answer.then((reply) => {
      // A stream item refused room fails its stream (a TaskError of the refusal): nothing to keep.
      if (item && reply.error) {
        this.#services.objects.refused(id);
        this.#services.streams.ungrant(id);
      }
      worker.send({ type: 'reserved', requestId, ...reply });
    });
  }

  /** Messages only a worker sends; false for the others. */
  #fromWorker(worker: WorkerHandle, message: WorkerToNode): boolean {
    const { scheduler } = this.#services;
    switch (message.type) {
      case 'done': {
        const task = scheduler.taskOf(worker, message.taskId);
        if (task) {
          this.#services.objects.written(task.returnId);
          scheduler.succeed(task, message.result);
        }
        scheduler.schedule();
        return true;
      }
      case 'failed': {
        const task = scheduler.taskOf(worker, message.taskId);
        if (task) scheduler.taskFailed(task, decodeThrown(message.error), this.#services.objects.refused(task.returnId));
        scheduler.schedule();
        return true;
      }
      case 'reserve': {
        // Room for the result of a task this worker runs (or an item of a running streaming one, within its credit), and nothing else.
        const running = worker.inflight[0];
        const streaming = running?.state === 'running' && running.options.streamWindow !== undefined ? running.returnId : undefined;
        const result = worker.inflight.some((task) => task.returnId === message.id);
        const ours = message.size > 0 && (result || (streaming !== undefined && this.#isNew(message.id) && this.#services.streams.grant(streaming, message.id)));
        this.#answerReserve(worker, message.requestId, message.id, message.size, ours, !result);
        return true;
      }
      case 'stream-item':
        this.#streamItem(worker, scheduler.taskOf(worker, message.taskId)?.returnId, message);
        return true;
      case 'stream-wait':
        this.#streamWait(worker, scheduler.taskOf(worker, message.taskId)?.returnId, message.requestId, message.index);
        return true;
      case 'recalled':
        scheduler.tasksRecalled(worker, message.taskIds);
        return true;
      default:
        return false;
    }
  }

  /** Messages any peer may send: objects, refs, nested tasks, names. */
  #common(peer: Peer, message: WorkerToNode): void {
    const { store, scheduler, objects, holds, names } = this.#services;
    const worker = peer instanceof WorkerHandle ? peer : undefined;
    switch (message.type) {
      case 'put':
        objects.accept(peer, message.id, message.payload);
        return;
      case 'submit':
        this.#services.submit(peer, message.task);
        return;
      case 'resolve':
        // Objects made by other nodes are fetched here first, and held for the asker.
        if (message.owners !== undefined) objects.fetchMissing(message.ids, message.owners, peer);
        scheduler.whileBlocked(worker, message.ids, objects.waitFor(message.ids, message.ids.length, null), () => {
          // A worker asking for an argument of the task it runs (sent as spilled): it is pinned.
          const running = worker?.inflight[0];
          const pinned = (id: string) => running?.state === 'running' && running.args.some((arg) => 'ref' in arg && arg.ref === id);
          void objects.locateAll(message.ids, peer, pinned).then((locations) => peer.send({ type: 'resolved', requestId: message.requestId, locations }));
        });
        return;
      case 'wait':
        scheduler.whileBlocked(worker, message.ids, objects.waitFor(message.ids, message.numReturns, message.timeoutMs), (ready) =>
          peer.send({ type: 'waited', requestId: message.requestId, ready }),
        );
        return;
      case 'reserve':
        // Only a worker's task result is written after a reservation (attached programs' puts
        // are checked when they arrive).
        peer.send({ type: 'reserved', requestId: message.requestId, error: encodeError(new RangeError('Only a worker reserves room, for the result of a task it runs')) });
        return;
      case 'room':
        store.makeRoom(message.size).then(
          () => peer.send({ type: 'reserved', requestId: message.requestId }),
          (error: unknown) => peer.send({ type: 'reserved', requestId: message.requestId, error: encodeError(error) }),
        );
        return;
      case 'collected':
        this.#services.collection.answered(peer, message.round);
        return;
      case 'actor-create': {
        const { actorId, cls, methods, args, contains, options } = message;
        this.#services.fetchArguments(args);
        this.#services.actors.create(peer, { id: actorId, cls: { source: cls.source, hash: cls.hash, name: cls.name }, methods, args, contains, options });
        return;
      }
      case 'actor-call':
        // The caller holds the result's ref from now on (as for a submitted task).
        store.expect(message.returnId);
        holds.holdFor(peer, message.returnId);
        this.#services.fetchArguments(message.args);
        this.#services.actors.call(peer, message.actorId, message.returnId, message.method, message.args, message.contains);
        return;
      case 'actor-kill':
        this.#services.actors.kill(message.actorId, message.noRestart);
        return;
      case 'actor-lookup': {
        const notFound = { type: 'actor-found', requestId: message.requestId, actorId: null, className: '', methods: [] } as const;
        const found = (actor: FoundActor) => ({ type: 'actor-found', requestId: message.requestId, actorId: actor.id, className: actor.className, methods: [...actor.methods] }) as const;
        const here = this.#services.actors.named(message.name);
        if (here) {
          // Held for the asker until it drops its handle (its ref takes this hold over).
          peer.send(holds.holdFor(peer, here.id) ? found({ id: here.id, className: here.cls.name, methods: here.methods }) : notFound);
          return;
        }
        // On another node of the cluster (its lifetime object is there, not held from here).
        this.#services.actors.lookup(message.name).then(
          (actor) => peer.send(actor ? found(actor) : notFound),
          () => peer.send(notFound),
        );
        return;
      }
      case 'stream-pull': {
        const answer = (next: Awaited<ReturnType<StreamService['pull']>>) => {
          if ('id' in next) {
            // The stream's hold on the item passes to the asker (its ref takes it over).
            holds.adopt(peer, next.id);
            peer.send({ type: 'stream-next', requestId: message.requestId, id: next.id, end: false });
          } else {
            peer.send({ type: 'stream-next', requestId: message.requestId, end: true, ...(next.error ? { error: encodeError(next.error) } : {}) });
          }
        };
        const next = this.#services.streams.pull(message.returnId, message.index, peer);
        // A task reading a stream waits as on a get: its CPUs are lent meanwhile.
        if (next instanceof Promise) scheduler.whileBlocked(worker, [message.returnId], next, answer);
        else answer(next);
        return;
      }
      case 'stream-close':
        this.#services.streams.close(message.returnId, peer);
        return;
      case 'cancel':
        this.#services.cancel(message.id);
        return;
      case 'free':
        for (const id of message.ids) store.freeId(id);
        return;
      case 'refs':
        holds.apply(peer, message.hold, message.release);
        return;
      case 'bind': {
        let version = 0;
        let error: string | undefined;
        try {
          version = names.bind(message.name, message.id);
        } catch (cause) {
          error = (cause as Error).message;
        }
        peer.send(error === undefined ? { type: 'bound', requestId: message.requestId, version } : { type: 'bound', requestId: message.requestId, version, error });
        return;
      }
      case 'lookup': {
        const binding = names.get(message.name);
        // Held for the asker until it drops its ref, so a replacement meanwhile cannot free it.
        if (binding) holds.holdFor(peer, binding.id);
        peer.send(
          binding
            ? { type: 'looked-up', requestId: message.requestId, id: binding.id, version: binding.version, location: objects.locate(binding.id, peer) }
            : { type: 'looked-up', requestId: message.requestId, id: null, version: 0 },
        );
        return;
      }
      case 'watch':
        names.watchFor(peer, message.name, (binding) => {
          // Held for the watcher until it drops its ref: it may read the version a while later.
          holds.holdFor(peer, binding.id);
          peer.send({ type: 'named', name: message.name, id: binding.id, version: binding.version });
        });
        return;
      case 'unwatch':
        names.unwatchFor(peer, message.name);
        return;
      default:
        return;
    }
  }
}
