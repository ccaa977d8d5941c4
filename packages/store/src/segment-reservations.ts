import { ObjectStoreFullError } from '@shoal/protocol';
import { CapacityPage } from './capacity-page.js';

/**
 * Room for the segments a process that is not the store writes (a worker's or an attached
 * program's `put`/`create`), reserved synchronously in the node's {@link CapacityPage} before a
 * byte is written: a put that does not fit fails at once with ObjectStoreFullError and no file is
 * created. What is reserved is recorded in this process's slot of the page, so the node gives it
 * back if the process dies first; the node turns it into the object's charge when told of it.
 *
 * Unlike the node's own reservations there is no garbage collection before failing: this
 * process's dropped refs would free room only after a round trip to the node, which a
 * synchronous put cannot wait for.
 *
 * @example
 * ```ts
 * const reservations = new SegmentReservations(directory);
 * reservations.reserve(size); // throws ObjectStoreFullError when it does not fit
 * try { writeSegment(); } catch (error) { reservations.release(size); throw error; }
 * ```
 */
export class SegmentReservations {
  readonly #directory: string;
  readonly #pid: number;
  /** The node's page (null: not looked for yet; undefined: the node has none). */
  #page: CapacityPage | undefined | null = null;
  #slot: number | undefined;

  /** `directory`: the node's session directory; `pid`: this process (whose slot it claims). */
  constructor(directory: string, pid: number = process.pid) {
    this.#directory = directory;
    this.#pid = pid;
  }

  /**
   * Takes `size` bytes of the node's capacity for a segment about to be written. Without a page
   * or a free slot nothing is taken, and the node checks the segment when told of it instead.
   * @throws ObjectStoreFullError when `size` does not fit now.
   */
  reserve(size: number): void {
    const page = this.#claimed();
    if (!page || this.#slot === undefined) return;
    if (!page.reserveInSlot(this.#slot, size)) {
      // Only the node's process spills, and a synchronous put here cannot wait for it.
      throw new ObjectStoreFullError(
        size,
        page.used,
        page.limit,
        ' (refused before it was written); the node spills objects nobody maps to make room, which a put in this process cannot wait for: `await store.makeRoom(bytes)` before it (bytes: the object\'s size and a few KiB for its header)',
      );
    }
  }

  /** Gives back `size` bytes reserved for a segment that was not written after all. */
  release(size: number): void {
    if (this.#page && this.#slot !== undefined) this.#page.releaseInSlot(this.#slot, size);
  }

  /** The page, with this process's slot claimed (once: the slot is this process's until it dies). */
  #claimed(): CapacityPage | undefined {
    if (this.#page === null) {
      this.#page = CapacityPage.open(this.#directory);
      this.#slot = this.#page?.claimSlot(this.#pid);
    }
    return this.#page;
  }
}
