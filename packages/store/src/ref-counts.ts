import type { ObjectRef } from '@shoal/protocol';
import type { ObjectTable } from './object-table.js';

/**
 * Reference counting over the object table. An object's count is the live ObjectRef instances of
 * this process (each counted once, until `release()` or collection), the holds of other processes
 * and pending tasks, and the stored objects that contain a ref to it. When it reaches zero the
 * object is dropped, unless it is still pending: its task settles it first, and the store drops
 * it then if nothing holds it.
 */
export class RefCounts {
  readonly #table: ObjectTable;
  readonly #sessionId: string;
  readonly #drop: (id: string) => void;
  readonly #refsDropped = new FinalizationRegistry<string>((id) => this.release(id));

  /** `drop` is called with each id whose count reached zero. */
  constructor(table: ObjectTable, sessionId: string, drop: (id: string) => void) {
    this.#table = table;
    this.#sessionId = sessionId;
    this.#drop = drop;
  }

  /** Counts a new ObjectRef of this session's object, until it is released or collected. */
  track(ref: ObjectRef): void {
    if (ref.owner !== this.#sessionId) return;
    const entry = this.#table.get(ref.id);
    if (!entry) return;
    entry.count += 1;
    this.#refsDropped.register(ref, ref.id, ref);
  }

  /** A ref released by hand: counted out now, once (a later collection of it counts nothing). */
  untrack(ref: ObjectRef): void {
    if (this.#refsDropped.unregister(ref)) this.release(ref.id);
  }

  /** Counts a reference held outside this process's ObjectRefs; false when there is no such object. */
  hold(id: string): boolean {
    const entry = this.#table.get(id);
    if (!entry) return false;
    entry.count += 1;
    return true;
  }

  /** Drops one reference; the object goes when none is left (see the class comment). */
  release(id: string): void {
    const entry = this.#table.get(id);
    if (!entry) return;
    entry.count -= 1;
    if (entry.count <= 0 && entry.state !== 'pending') this.#drop(id);
  }

  /** Holds each object a new object contains a ref to; returns the ids held (those that exist). */
  retainContained(ids: readonly string[]): string[] {
    const contains: string[] = [];
    for (const id of ids) {
      if (this.hold(id)) contains.push(id);
    }
    return contains;
  }
}
