import type { ObjectRef } from '@shoal/protocol';
import type { ObjectTable } from './object-table.js';

/** One counted ref to a segment object: released once, by `release()`, its collection, or a sweep. */
interface Cell {
  readonly id: string;
  released: boolean;
  /** A sweep after a collection finds it dead at once. */
  readonly weak: WeakRef<ObjectRef>;
}

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
  readonly #refsDropped = new FinalizationRegistry<Cell | string>((held) => (typeof held === 'string' ? this.release(held) : this.#collected(held)));
  /** Cells of refs to segment objects (the ones that take capacity), for {@link RefCounts.sweep}. */
  readonly #segmentRefs = new Set<Cell>();
  readonly #cells = new WeakMap<ObjectRef, Cell>();

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
    // Only refs to segments (what takes capacity) are kept for a sweep: a WeakRef per task result
    // (a pending ref) cost the task path ~9% of its throughput, in the tracking and in GC. A
    // result's refs count out when their finalizers run, a turn after the collection, which the
    // node's asynchronous reservation waits for (ObjectService.reserve).
    if (entry.state !== 'ready' || entry.bytes) {
      this.#refsDropped.register(ref, ref.id, ref);
      return;
    }
    const cell: Cell = { id: ref.id, released: false, weak: new WeakRef(ref) };
    this.#segmentRefs.add(cell);
    this.#cells.set(ref, cell);
    this.#refsDropped.register(ref, cell, ref);
  }

  /** A ref released by hand: counted out now, once (a later collection of it counts nothing). */
  untrack(ref: ObjectRef): void {
    if (!this.#refsDropped.unregister(ref)) return;
    const cell = this.#cells.get(ref);
    if (cell) this.#segmentRefs.delete(cell);
    this.release(ref.id);
  }

  /**
   * Right after a garbage collection: counts out, now, the refs to segment objects it collected,
   * instead of when their finalization callbacks run (a later turn, too late for a put waiting
   * synchronously for room). Returns how many refs were counted out.
   */
  sweep(): number {
    let swept = 0;
    for (const cell of this.#segmentRefs) {
      if (cell.weak.deref() !== undefined) continue;
      this.#segmentRefs.delete(cell);
      cell.released = true;
      swept += 1;
      this.release(cell.id);
    }
    return swept;
  }

  #collected(cell: Cell): void {
    if (cell.released) return;
    cell.released = true;
    this.#segmentRefs.delete(cell);
    this.release(cell.id);
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
