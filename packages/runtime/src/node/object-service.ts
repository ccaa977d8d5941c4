import {
  ObjectStoreFullError,
  ObjectTooLargeError,
  REMOTE_OBJECT_LIMIT_BYTES,
  encodeError,
  type ObjectLocation,
  type ObjectPayload,
} from '@shoal/protocol';
import { afterFinalizers, type ObjectStore } from '@shoal/store';
import type { Peer } from './peer.js';
import type { RefHolds } from './ref-holds.js';

/**
 * The node's objects as its peers see them: where an object is (inline bytes, a segment to map,
 * an error), who was told so (and must forget it when it is freed), objects arriving from peers,
 * waiting for objects to settle, and — in a cluster — fetching objects other nodes made.
 */
export class ObjectService {
  readonly #store: ObjectStore;
  readonly #holds: RefHolds;
  /** Results whose reservation was refused, until their task's outcome arrives ({@link ObjectService.refused}). */
  readonly #refused = new Map<string, Error>();
  /** Who is writing each object room was reserved for (given back if that peer goes away first). */
  readonly #grantedTo = new Map<string, Peer>();
  /** Peers that were told where a segment object is (they may cache a mapping of it). */
  readonly #mappedBy = new Map<string, Set<Peer>>();
  /** Brings object `id`, made by node `owner`, into this store (set when the node joins a cluster). */
  fetch: ((id: string, owner: string) => void) | undefined;
  /** Asks the node's other processes to collect garbage (a {@link CollectionRound}); set by the node. */
  collectPeers: (() => Promise<void>) | undefined;

  constructor(store: ObjectStore, holds: RefHolds) {
    this.#store = store;
    this.#holds = holds;
    // Peers on this machine write segments themselves: they reserve in the store's shared books.
    store.shareCapacity();
  }

  /**
   * Where each of `ids` is, for `peer` (see {@link ObjectService.locate}); a spilled one is read
   * back first, waiting for room when processes that no longer view what fills the memory still
   * map it (see `store.restoreWhenRoom`). `pinned(id)`: whether `id` is pinned for this very peer
   * (an argument of the task it runs), which needs no grace after the hand-out. Never rejects:
   * a failure is that object's location.
   */
  async locateAll(ids: readonly string[], peer?: Peer, pinned: (id: string) => boolean = () => false): Promise<Record<string, ObjectLocation>> {
    const failed = new Map<string, Error>();
    for (const id of ids) {
      if (!this.#store.isSpilled(id)) continue;
      try {
        await this.#store.restoreWhenRoom(id, !pinned(id));
      } catch (error) {
        failed.set(id, error as Error);
      }
    }
    const locations: Record<string, ObjectLocation> = {};
    for (const id of ids) {
      let error = failed.get(id);
      if (!error) {
        try {
          locations[id] = this.locate(id, peer, pinned(id));
          continue;
        } catch (cause) {
          // Spilled again meanwhile for a remote driver's bytes, or its mapping failed.
          error = cause as Error;
        }
      }
      locations[id] = { kind: 'error', error: encodeError(error) };
    }
    return locations;
  }

  /**
   * Where argument `id` of a task sent to `worker` is. A spilled one is read back now if the task
   * starts at once (it is pinned right after: see {@link ObjectService.pin}) and there is room;
   * otherwise the worker is told it is spilled, and asks for it ({@link ObjectService.locateAll})
   * when the task starts. No grace is taken: a queued task's argument may be spilled before its
   * task starts, and the worker then asks again.
   */
  locateArgument(id: string, worker: Peer, starting: boolean): ObjectLocation {
    if (this.#store.isSpilled(id)) {
      if (!starting) return { kind: 'spilled' };
      try {
        this.#store.restore(id, false);
      } catch (error) {
        if (error instanceof ObjectStoreFullError) return { kind: 'spilled' };
        return { kind: 'error', error: encodeError(error as Error) };
      }
    }
    return this.locate(id, worker, true);
  }

  /** A task with argument `id` starts: it stays in memory (never spilled) until {@link ObjectService.letGo}. */
  pin(id: string): void {
    this.#store.pin(id);
  }

  /** The running task with argument `id` left its worker. */
  letGo(id: string): void {
    this.#store.unpin(id);
  }

  /**
   * Where `id` is, for `peer` (recorded: a peer told of a segment may map it, and is told to
   * forget it). A spilled object is read back first; `pinned`: it is pinned, so not kept from
   * spilling by the grace after a hand-out.
   */
  locate(id: string, peer?: Peer, pinned = false): ObjectLocation {
    const status = this.#store.status(id);
    switch (status.state) {
      case 'ready':
        if (status.bytes) return { kind: 'inline', bytes: status.bytes };
        // A remote driver cannot map this machine's segments: it gets the bytes.
        if (peer?.remote) {
          if (status.size > REMOTE_OBJECT_LIMIT_BYTES) {
            return { kind: 'error', error: encodeError(new ObjectTooLargeError({ size: status.size, objectId: id })) };
          }
          return { kind: 'inline', bytes: this.#store.segmentBytes(id) };
        }
        // Spilled: read back now, before the peer is told to map it.
        try {
          this.#store.restore(id, !pinned);
        } catch (error) {
          return { kind: 'error', error: encodeError(error as Error) };
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

  /** A segment object was freed: peers that may have it mapped drop their cached mapping. */
  forgetEverywhere(id: string): void {
    const peers = this.#mappedBy.get(id);
    if (!peers) return;
    this.#mappedBy.delete(id);
    for (const peer of peers) peer.send({ type: 'forget', ids: [id] });
  }

  /**
   * Reserves room for object `id` of `size` bytes that `peer` is about to write (see
   * `store.reserveRoom`). Returns the encoded refusal, or the name of the file of reused memory
   * the store lent for it (in the session directory, for the peer to fill). A task result that is refused is
   * that failure at once (whoever gets it sees ObjectStoreFullError).
   */
  async reserve(peer: Peer, id: string, size: number): Promise<{ error?: Uint8Array; lent?: string }> {
    let attempt = this.#tryReserve(id, size);
    // The other processes may hold refs they dropped long ago: ask them to collect, then retry.
    if (attempt.refusal) {
      // This process's own refs collected by the refused reservation's GC count out when their
      // finalizers run (refs to results are not swept at once): a turn later.
      await Promise.all([this.collectPeers?.(), afterFinalizers()]);
      // It went away meanwhile: a grant now would have nobody to give it back.
      if (peer.connection === undefined) return { error: encodeError(attempt.refusal) };
      attempt = this.#tryReserve(id, size);
    }
    const { refusal, lent } = attempt;
    if (refusal) {
      // The worker reports the task failed with this refusal; the scheduler then fails it with
      // the refusal itself, or retries it (retryExceptions): the result is not settled here.
      this.#refused.set(id, refusal);
      return { error: encodeError(refusal) };
    }
    // A retry on another worker takes the grant over: the dead one's cleanup must not release it.
    // A refusal of an earlier attempt (its worker died before reporting it) is not this one's.
    this.#refused.delete(id);
    this.#grantedTo.set(id, peer);
    return lent === undefined ? {} : { lent };
  }

  /** The store's refusal, or the name of the file it lent for the object (if any). */
  #tryReserve(id: string, size: number): { refusal?: Error; lent?: string } {
    try {
      const lent = this.#store.reserveRoom(id, size, ', so this result cannot be stored');
      return lent === undefined ? {} : { lent };
    } catch (error) {
      return { refusal: error as Error };
    }
  }

  /**
   * The refusal, when the task making result `id` failed because its result was refused room
   * (asked once, when its outcome arrives): the failure is then the refusal itself.
   */
  refused(id: string): Error | undefined {
    const refusal = this.#refused.get(id);
    this.#refused.delete(id);
    return refusal;
  }

  /** Whether room for `id` was granted to `peer` and not used yet. */
  isGrantedTo(peer: Peer, id: string): boolean {
    return this.#grantedTo.get(id) === peer;
  }

  /** What `peer` wrote of `id` under its grant is not wanted (a refused stream item): room and file go. */
  discardGrant(peer: Peer, id: string): void {
    if (this.#grantedTo.get(id) !== peer) return;
    this.#grantedTo.delete(id);
    this.#refused.delete(id);
    this.#store.discardUnclaimed(id);
  }

  /** `peer` finished writing `id` (its put or its task result arrived): the grant is the object's now. */
  written(id: string): void {
    this.#grantedTo.delete(id);
    this.#refused.delete(id);
  }

  /**
   * The peer went away: nothing is sent to it any more, and room it was granted, or reserved
   * itself in the capacity page and never used, is given back.
   */
  forget(peer: Peer): void {
    if (!peer.remote) this.#store.releaseWriter(peer.pid);
    for (const [id, writer] of this.#grantedTo) {
      if (writer !== peer) continue;
      this.#grantedTo.delete(id);
      this.#store.releaseRoom(id);
      // A stream item it was writing when it died: whatever it wrote goes (a task result is
      // discarded by the scheduler, before a retry writes it anew).
      if (this.#store.status(id).state === 'freed') this.#store.discardUnclaimed(id);
    }
    for (const [id, peers] of this.#mappedBy) {
      peers.delete(peer);
      if (peers.size === 0) this.#mappedBy.delete(id);
    }
  }

  /** An object a peer put: registered here, held for the peer from now on (counted here, never unheld). */
  accept(peer: Peer, id: string, payload: ObjectPayload): void {
    this.written(id);
    if (this.#store.status(id).state !== 'freed') return;
    try {
      if (payload.bytes && payload.size >= this.#store.options.inlineThreshold) {
        // A remote driver's large object: into a segment, as if it had written it here.
        this.#store.registerBytes(id, payload.bytes, payload.contains);
      } else {
        this.#store.register(id, payload, peer.remote ? undefined : peer.pid);
      }
    } catch (error) {
      // No room (or /dev/shm full): the object exists as that failure, for whoever gets it.
      this.#store.expect(id);
      this.#holds.holdFor(peer, id);
      this.#store.fail(id, error as Error);
      return;
    }
    this.#holds.holdFor(peer, id);
  }

  /**
   * Objects among `ids` made by another node (`owners[i]`) and not here are fetched; `peer`, if
   * given, is the one asking (held for it at once, so the copy cannot be freed before it reads it).
   */
  fetchMissing(ids: readonly string[], owners: readonly (string | undefined)[], peer?: Peer): void {
    const fetch = this.fetch;
    if (!fetch) return;
    ids.forEach((id, i) => {
      const owner = owners[i];
      if (owner === undefined || owner === this.#store.sessionId || this.#store.status(id).state !== 'freed') return;
      this.#store.expect(id);
      // Peers that said they hold a ref to it hold it now; the asker's hold may come later.
      this.#holds.claimPending(id);
      if (peer) this.#holds.holdAhead(peer, id);
      fetch(id, owner);
    });
  }

  /**
   * Resolves with the ids among `ids` that settled, in the order given, once `numReturns` have
   * (or after `timeoutMs`): every one settled by then, which may be more than `numReturns`.
   */
  async waitFor(ids: readonly string[], numReturns: number, timeoutMs: number | null): Promise<string[]> {
    const settled = await this.waitSettled(ids, numReturns, timeoutMs);
    const ready: string[] = [];
    for (let i = 0; i < ids.length; i++) if (settled[i] === 1) ready.push(ids[i]!);
    return ready;
  }

  /**
   * {@link ObjectService.waitFor} as a flag per position (1: settled). Enough settled already:
   * at once, and nothing is registered; otherwise one waiter on each pending id while the wait
   * lasts, none after it (`ObjectStore.waitSettled`).
   */
  waitSettled(ids: readonly string[], numReturns: number, timeoutMs: number | null): Promise<Uint8Array> {
    return this.#store.waitSettled(ids, Math.min(numReturns, ids.length), timeoutMs);
  }
}

