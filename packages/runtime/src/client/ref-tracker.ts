import { MAX_IDS_PER_MESSAGE, type ObjectRef } from '@shoal/protocol';

/** What a {@link RefTracker} reports to. */
export interface RefTrackerOptions {
  /** Sends one `refs` message: objects this process now holds refs to, and objects it no longer does. */
  readonly send: (hold: string[], release: string[]) => void;
  /** The last ref to `id` in this process is gone (before its release is sent). */
  readonly onLastRef?: (id: string) => void;
}

/**
 * Counts this process's refs to each object, so that its node holds each object exactly once for
 * the process: the first ref to an id (0 → 1) asks for a hold, the last one going away (1 → 0,
 * by garbage collection or `ref.release()`) gives it back. Holds and releases of one event-loop
 * turn travel together in one `refs` message, sent on the next turn so that a `put` or `submit`
 * sent in this turn reaches the node before the hold of its ref. The node applies a message's
 * holds before its releases, so an object released and held again in one turn stays alive; a turn
 * with more ids than one message may list sends all its holds before its releases.
 *
 * @example
 * ```ts
 * const refs = new RefTracker({ send: (hold, release) => connection.send({ type: 'refs', hold, release }) });
 * setObjectRefHooks({ track: (ref) => refs.track(ref), untrack: (ref) => refs.untrack(ref), get });
 * ```
 */
export class RefTracker {
  readonly #send: (hold: string[], release: string[]) => void;
  readonly #onLastRef: ((id: string) => void) | undefined;
  readonly #counts = new Map<string, number>();
  /** Ids the node already counts a hold of ours for (our puts and submits): no `refs` hold needed. */
  readonly #heldByNode = new Set<string>();
  readonly #dropped = new FinalizationRegistry<string>((id) => this.#release(id));
  #holds: string[] = [];
  #releases: string[] = [];
  #flushScheduled = false;

  constructor(options: RefTrackerOptions) {
    this.#send = options.send;
    this.#onLastRef = options.onLastRef;
  }

  /**
   * The node holds `id` for this process already (it was put or submitted from here, or the node
   * sent it while holding it for us): the next first ref to it takes that hold over.
   */
  heldByNode(id: string): void {
    this.#heldByNode.add(id);
  }

  /** A ref was made in this process (every ObjectRef constructor calls this). */
  track(ref: ObjectRef): void {
    // Refs made by other nodes count too: this node may hold a copy fetched for this process.
    const count = this.#counts.get(ref.id) ?? 0;
    this.#counts.set(ref.id, count + 1);
    this.#dropped.register(ref, ref.id, ref);
    if (count === 0 && !this.#heldByNode.delete(ref.id)) {
      this.#holds.push(ref.id);
      this.#schedule();
    }
  }

  /** `ref.release()`: the ref counts out now instead of when it is collected (once either way). */
  untrack(ref: ObjectRef): void {
    if (this.#dropped.unregister(ref)) this.#release(ref.id);
  }

  #release(id: string): void {
    const count = this.#counts.get(id);
    if (count === undefined) return;
    if (count > 1) {
      this.#counts.set(id, count - 1);
      return;
    }
    this.#counts.delete(id);
    this.#onLastRef?.(id);
    this.#releases.push(id);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // After the current tick, so a put or submit message precedes the hold of its ref.
    setImmediate(() => this.flush());
  }

  /** Sends the holds and releases of this turn now (they are otherwise sent after it). */
  flush(): void {
    this.#flushScheduled = false;
    const hold = this.#holds;
    const release = this.#releases;
    this.#holds = [];
    this.#releases = [];
    if (hold.length + release.length <= MAX_IDS_PER_MESSAGE) {
      if (hold.length > 0 || release.length > 0) this.#send(hold, release);
      return;
    }
    // More than one message may list: every hold goes before any release, as in one message.
    for (let i = 0; i < hold.length; i += MAX_IDS_PER_MESSAGE) this.#send(hold.slice(i, i + MAX_IDS_PER_MESSAGE), []);
    for (let i = 0; i < release.length; i += MAX_IDS_PER_MESSAGE) this.#send([], release.slice(i, i + MAX_IDS_PER_MESSAGE));
  }
}
