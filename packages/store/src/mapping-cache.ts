import { closeSegment, mapSegment, mappingWritten, openSegment, segmentSize } from './segment-files.js';
import { ObjectCorruptError } from '@shoal/protocol';

/**
 * This process's copy-on-write mappings of segments, one per object.
 *
 * The most recently used `capacity` mappings are held strongly; older ones are only weakly held,
 * so a mapping lives exactly as long as the cache or a view of it needs it, and is unmapped by
 * the garbage collector after that. A get for an object whose mapping is still alive (even if
 * evicted) reuses it, unless it was written: mappings are write-protected until their first write
 * (`mappingWritten`), and a written one is dropped from the cache (the views holding it keep it,
 * and their writes) so the get maps the stored bytes afresh. Only writers pay for that.
 */
export class MappingCache {
  readonly capacity: number;
  readonly #recent = new Map<string, ArrayBuffer>();
  readonly #alive = new Map<string, WeakRef<ArrayBuffer>>();
  readonly #collected = new FinalizationRegistry<string>((id) => {
    if (this.#alive.get(id)?.deref() === undefined) this.#alive.delete(id);
  });

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Number of mappings held strongly right now. */
  get size(): number {
    return this.#recent.size;
  }

  /**
   * The mapping of the segment at `path` for object `id`, made MAP_PRIVATE on first use: its
   * first `length` bytes, or the whole file when `length` is not given.
   * @throws SharedMemoryError (ENOENT when the segment is gone) or ObjectCorruptError when the
   *   file is shorter than `length`.
   */
  map(id: string, path: string, length?: number): ArrayBuffer {
    const recent = this.#recent.get(id);
    const cached = recent ?? this.#alive.get(id)?.deref();
    if (cached && !mappingWritten(cached)) {
      if (recent) {
        this.#recent.delete(id);
        this.#recent.set(id, recent);
      } else this.adopt(id, cached);
      return cached;
    }
    if (cached) {
      // Written through a view this process holds: that view keeps it; this get sees the object.
      this.#recent.delete(id);
      this.#alive.delete(id);
    }
    const fd = openSegment(path, 'read');
    let buffer: ArrayBuffer;
    try {
      // Touching a mapped page beyond the end of its file raises SIGBUS; refuse short files.
      const size = segmentSize(fd, path);
      if (length !== undefined && size < length) {
        throw new ObjectCorruptError(path, `the file has ${size} bytes, the object ${length}`);
      }
      buffer = mapSegment(fd, length ?? size, { shared: false }, path);
    } finally {
      closeSegment(fd, path);
    }
    this.adopt(id, buffer);
    return buffer;
  }

  /** Caches a mapping made elsewhere (a sealed `store.create` writer's). */
  adopt(id: string, buffer: ArrayBuffer): void {
    if (this.#alive.get(id)?.deref() !== buffer) {
      this.#alive.set(id, new WeakRef(buffer));
      this.#collected.register(buffer, id);
    }
    this.#recent.delete(id);
    this.#recent.set(id, buffer);
    if (this.#recent.size > this.capacity) {
      const oldest = this.#recent.keys().next().value as string;
      this.#recent.delete(oldest);
    }
  }

  /**
   * Stops holding the mapping of `id` (it is unmapped once no view of it remains). Returns the
   * bytes of a mapping of it still alive here: memory the store can reuse only once it is
   * unmapped (a collection away, if no view holds it).
   */
  forget(id: string): number {
    this.#recent.delete(id);
    return this.#alive.get(id)?.deref()?.byteLength ?? 0;
  }

  /**
   * Stops holding object `id`'s mapping strongly, without looking at it (a `deref` would keep it
   * alive to the end of this job): once no view holds it, a collection unmaps it.
   */
  release(id: string): void {
    this.#recent.delete(id);
  }

  /** Stops holding every mapping. */
  clear(): void {
    this.#recent.clear();
  }
}
