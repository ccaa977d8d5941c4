import { debuglog } from 'node:util';
import { CollectionThrottle } from '@shoal/store';
import type { Peer } from './peer.js';

const debug = debuglog('shoal:node');

/** How long a round waits for the processes that have not answered. */
export const COLLECTION_ROUND_TIMEOUT_MS = 1000;

/**
 * Asks every process of the node (workers, attached programs) to collect garbage and send the
 * releases of the refs it dropped (`collect` → their `refs`, then `collected`), for a reservation
 * that does not fit: their dropped refs are holds here until their own V8 collects, which a small
 * heap may never do. Shortages at the same time share one round; each round is bounded by
 * {@link COLLECTION_ROUND_TIMEOUT_MS}.
 *
 * @example
 * ```ts
 * const round = new CollectionRound(() => peers(), () => store.stats().usedBytes);
 * await round.run(); // then try the reservation again
 * // on each `collected` message: round.answered(peer, message.round)
 * ```
 */
export class CollectionRound {
  readonly #peers: () => Iterable<Peer>;
  readonly #usedBytes: () => number;
  #round = 0;
  #running: Promise<void> | undefined;
  #waiting = new Set<Peer>();
  #done: (() => void) | undefined;
  /** Each round costs every process a full GC: one that freed nothing is not repeated at once. */
  readonly #rounds = new CollectionThrottle();

  /** `peers`: the processes to ask; `usedBytes`: the store's, to tell whether a round freed anything. */
  constructor(peers: () => Iterable<Peer>, usedBytes: () => number) {
    this.#peers = peers;
    this.#usedBytes = usedBytes;
  }

  /**
   * Resolves once every process answered the current round (or it timed out). `urgent`: run even
   * if the last round freed nothing (a spilled object waits for room that mappings hold, which a
   * round frees without changing the bytes used).
   */
  run(urgent = false): Promise<void> {
    if (this.#running) return this.#running;
    if (!urgent && !this.#rounds.due()) return Promise.resolve();
    const round = ++this.#round;
    this.#waiting = new Set([...this.#peers()].filter((peer) => peer.connection !== undefined));
    if (this.#waiting.size === 0) return Promise.resolve();
    const before = this.#usedBytes();
    this.#running = new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#finish(), COLLECTION_ROUND_TIMEOUT_MS);
      this.#done = () => {
        clearTimeout(timer);
        resolve();
      };
      for (const peer of this.#waiting) peer.send({ type: 'collect', round });
    }).then(() => {
      this.#rounds.ran(this.#usedBytes() < before);
      debug('collection round %d: %d bytes freed', round, before - this.#usedBytes());
    });
    return this.#running;
  }

  /** `peer` answered round `round` (its releases, sent before, are applied already). */
  answered(peer: Peer, round: number): void {
    if (round !== this.#round || !this.#waiting.delete(peer)) return;
    if (this.#waiting.size === 0) this.#finish();
  }

  /** The peer went away: the round does not wait for it. */
  forget(peer: Peer): void {
    this.answered(peer, this.#round);
  }

  #finish(): void {
    const done = this.#done;
    this.#done = undefined;
    this.#running = undefined;
    this.#waiting.clear();
    done?.();
  }
}
