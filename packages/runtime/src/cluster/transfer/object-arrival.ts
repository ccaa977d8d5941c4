// Bringing an object this node needs into its store: pulled from the node that made it, or from
// wherever the head says a copy is, together with the objects it refers to.
import { ObjectLostError, fromWireFailure } from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';
import type { ObjectPuller, PulledObject } from './object-puller.js';

/** Data URLs of the nodes holding each object, by id (what the head's `locate` answers). */
export type Locations = Readonly<Record<string, readonly string[]>>;

/** Refs nested deeper than this in pulled objects are refused (a cycle, or a hostile holder). */
const MAX_DEPTH = 64;

/** What an {@link ObjectArrival} works with. */
export interface ObjectArrivalOptions {
  readonly store: ObjectStore;
  readonly puller: ObjectPuller;
  /** Asks the head which nodes hold these objects; answers `{}` when it cannot say. */
  readonly locate: (ids: string[]) => Promise<Locations>;
  /** This node's own data URL (never a source to pull from). */
  readonly ownUrl: () => string;
}

/**
 * Brings objects into this node's store. Concurrent arrivals of one id share one, so the one
 * file a merged pull wrote is registered once and never removed from under another caller.
 *
 * @example
 * ```ts
 * const arrival = new ObjectArrival({ store, puller, locate, ownUrl: () => data.url });
 * await arrival.arrive(id, ['ws://10.0.0.2:7001']);
 * ```
 */
export class ObjectArrival {
  readonly #options: ObjectArrivalOptions;
  readonly #arriving = new Map<string, Promise<void>>();

  constructor(options: ObjectArrivalOptions) {
    this.#options = options;
  }

  /**
   * Brings object `id` here: pulls it, then (children first) the objects it refers to, and
   * registers it — into the entry that expects it, or as a new one.
   */
  arrive(id: string, sources: readonly string[], depth = 0): Promise<void> {
    const existing = this.#arriving.get(id);
    if (existing) return existing;
    const { store } = this.#options;
    const arriving = (async () => {
      const object = await this.pull(id, sources);
      const contains: string[] = [];
      try {
        for (const child of object.contains ?? []) {
          if (store.status(child).state !== 'freed') {
            contains.push(child);
            continue;
          }
          if (depth >= MAX_DEPTH) throw new RangeError(`Expected objects to nest refs at most ${MAX_DEPTH} deep, got deeper at ${id}: store the inner objects' refs side by side instead.`);
          await this.arrive(child, sources, depth + 1);
          contains.push(child);
        }
      } catch (error) {
        if (!object.bytes) this.discard(id);
        throw error;
      }
      const state = store.status(id).state;
      if (state === 'pending' || state === 'freed') {
        store.register(id, { size: object.size, bytes: object.bytes, contains });
      } else if (!object.bytes) {
        // Settled meanwhile as a failure (freed while pending): nobody will read the file.
        this.discard(id);
      }
    })().finally(() => this.#arriving.delete(id));
    this.#arriving.set(id, arriving);
    return arriving;
  }

  /** Pulls `id` from `sources`; when none can send it, from any other node the head knows holds a copy. */
  async pull(id: string, sources: readonly string[]): Promise<PulledObject> {
    const { puller } = this.#options;
    try {
      if (sources.length > 0) return await puller.pull(id, [...sources], fromWireFailure);
    } catch (error) {
      if (!(error instanceof ObjectLostError)) throw error;
    }
    const located = await this.#options.locate([id]);
    const ownUrl = this.#options.ownUrl();
    const urls = (located[id] ?? []).filter((url) => url !== ownUrl && !sources.includes(url));
    return puller.pull(id, urls, fromWireFailure);
  }

  /** Removes the segment file a pull wrote that nobody will register. */
  discard(id: string): void {
    this.#options.store.discardUnclaimed(id);
  }
}
