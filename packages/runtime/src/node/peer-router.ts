import { decodeThrown, encodeError, type WireTask, type WorkerToNode } from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';
import type { LocalScheduler } from '../scheduling/local-scheduler.js';
import { WorkerHandle } from '../workers/worker-handle.js';
import type { CollectionRound } from './collection-round.js';
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
  /** A task submitted by a peer (a nested task, or one from an attached program). */
  submit(peer: Peer, task: WireTask): void;
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
    // Task outcomes only ever come from workers.
    if (peer instanceof WorkerHandle && this.#fromWorker(peer, message)) return;
    this.#common(peer, message);
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
        // Room for the result of a task this worker runs, and nothing else: a grant is charged to
        // an object id, and one for a stranger's id would take or replace another writer's room.
        const ours = message.size > 0 && worker.inflight.some((task) => task.returnId === message.id);
        const answer = ours
          ? this.#services.objects.reserve(worker, message.id, message.size)
          : Promise.resolve<{ error?: Uint8Array; lent?: string }>({
              error: encodeError(new RangeError(`A worker may reserve room only for the result of a task it runs (object ${message.id}, ${message.size} bytes)`)),
            });
        // The answer carries `error` or `lent` only when they are set.
        void answer.then((reply) => worker.send({ type: 'reserved', requestId: message.requestId, ...reply }));
        return true;
      }
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
      case 'cancel':
        scheduler.cancel(message.id);
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
