import { collectGarbage } from '@shoal/store';

/** Bytes of freed objects a process may keep mapped before it collects to unmap them. */
export const REUSE_COLLECT_BYTES = 64 * 1024 * 1024;

/**
 * Unmaps, soon, the mappings of objects the node freed. The node reuses an object's memory only
 * once no process maps it, and a mapping goes when V8 collects it: a worker's small heap gives V8
 * little reason to, so the memory of a big argument would stay out of reuse for long. Past
 * {@link REUSE_COLLECT_BYTES} of such mappings, a full collection runs on the next turn (a few ms on
 * a worker's heap, against the page faults of that many bytes of fresh memory; at most one queued).
 */
export class UnmapCollector {
  #bytes = 0;
  #scheduled = false;

  /** The node freed objects of which `mapped` bytes are still mapped here. */
  freed(mapped: number): void {
    this.#bytes += mapped;
    if (this.#bytes < REUSE_COLLECT_BYTES || this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => {
      this.#scheduled = false;
      this.#bytes = 0;
      collectGarbage();
    }, 0).unref();
  }
}
