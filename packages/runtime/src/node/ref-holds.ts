import type { ObjectStore } from '@shoal/store';
import type { Peer } from './peer.js';

/**
 * Refs held by the other processes of this node (workers, attached programs), counted in the
 * store and released with the process if it goes away. See docs/internals.md ("Reference
 * counting"): a peer sends `refs { hold, release }` when its own count for an id goes 0→1 and
 * 1→0; some holds are counted here when a message arrives instead (its puts, submits, names).
 */
export class RefHolds {
  readonly #store: ObjectStore;
  readonly #peers: () => Iterable<Peer>;

  /** `peers` lists every connected process (workers and clients). */
  constructor(store: ObjectStore, peers: () => Iterable<Peer>) {
    this.#store = store;
    this.#peers = peers;
  }

  /** Counts a ref held by `peer`; false if the object is not here. */
  holdFor(peer: Peer, id: string): boolean {
    if (!this.#store.hold(id)) return false;
    peer.holds.set(id, (peer.holds.get(id) ?? 0) + 1);
    return true;
  }

  /** Counts for `peer` a hold on `id` the store already has (handed over to it: a stream's item). */
  adopt(peer: Peer, id: string): void {
    peer.holds.set(id, (peer.holds.get(id) ?? 0) + 1);
  }

  /**
   * Holds `id` for a peer whose get made this node fetch it, unless the peer's own hold is
   * counted already; its `refs` hold, whenever it arrives, is then this one (not a second).
   */
  holdAhead(peer: Peer, id: string): void {
    if (peer.holds.has(id)) return;
    this.holdFor(peer, id);
    peer.heldAhead.add(id);
  }

  /** Object `id` now exists here (it is being fetched): peers that said they hold a ref to it hold it. */
  claimPending(id: string): void {
    for (const peer of this.#peers()) {
      if (peer.pendingHolds.delete(id)) this.holdFor(peer, id);
    }
  }

  /** A `refs` message: ids whose count went 0→1 and 1→0 in the peer. */
  apply(peer: Peer, hold: readonly string[], release: readonly string[]): void {
    for (const id of hold) {
      // Counted already, when this peer's get made this node fetch it.
      if (peer.heldAhead.delete(id)) continue;
      // A ref to an object this node does not have (yet): counted if it is fetched here.
      if (!this.holdFor(peer, id)) peer.pendingHolds.add(id);
    }
    for (const id of release) {
      const count = peer.holds.get(id);
      if (count === undefined) {
        peer.pendingHolds.delete(id);
        continue;
      }
      if (count <= 1) peer.holds.delete(id);
      else peer.holds.set(id, count - 1);
      this.#store.release(id);
    }
  }

  /** The peer went away: everything it held is released. */
  forget(peer: Peer): void {
    for (const [id, count] of peer.holds) for (let i = 0; i < count; i++) this.#store.release(id);
    peer.holds.clear();
  }
}
