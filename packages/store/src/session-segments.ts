import { accessSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LENT_FILE_PATTERN, ObjectFreedError, SharedMemoryError, decodeValue, type EncodedValue } from '@shoal/protocol';
import { MappingCache } from './mapping-cache.js';
import { ObjectWriter, type WriterHost } from './object-writer.js';
import { defaultMaxMappings } from './options.js';
import { writeEncodedBytes, writeEncodedLent, writeEncodedSegment } from './segment-io.js';
import { sliceBuffer } from './segment-files.js';
import { segmentPathOf } from './session-directory.js';

/**
 * One process's access to the segments of a session directory, for the store and for processes
 * that are not the store (workers, attached programs): it reads objects through this process's
 * mapping cache, writes new segments, and hides where files are (including other sessions'
 * directories beside this one). It never deletes a stored object's file: only the store does.
 *
 * @example
 * ```ts
 * const segments = new SessionSegments('/dev/shm/shoal-abc');
 * segments.writeEncoded(id, encodeValue(value)); // then tell the node it exists
 * const value = segments.read(id, size);          // a copy-on-write view, no copy
 * ```
 */
export class SessionSegments {
  /** The session directory. */
  readonly directory: string;
  readonly #root: string;
  readonly #mappings: MappingCache;

  constructor(directory: string, maxMappings: number = defaultMaxMappings()) {
    this.directory = directory;
    this.#root = dirname(directory);
    this.#mappings = new MappingCache(maxMappings);
  }

  /** Mappings the cache holds strongly now. */
  get cachedMappings(): number {
    return this.#mappings.size;
  }

  /**
   * Decodes object `id` straight from its segment (mapped once per process, copy-on-write). With
   * `size` only that many bytes are mapped, and a shorter file is ObjectCorruptError; `owner`
   * names another session of this machine whose directory holds it.
   * @throws SharedMemoryError (ENOENT when the segment is gone).
   */
  read(id: string, size?: number, owner?: string): unknown {
    const mapping = this.#mappings.map(id, this.#path(id, owner), size);
    return decodeValue(new Uint8Array(mapping), { copy: false, sliceArrayBuffer: sliceBuffer, where: `object ${id}` });
  }

  /**
   * Decodes object `id` of session `owner` (another session of this machine), whole, if its
   * segment still exists.
   * @throws ObjectFreedError when it does not (freed, its session ended, or it is inline there).
   */
  readOther(id: string, owner: string): unknown {
    try {
      // A mapping kept from before must not outlive the object: check the segment still exists.
      this.check(id, owner);
      return this.read(id, undefined, owner);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || (error instanceof SharedMemoryError && error.errnoCode === 'ENOENT')) {
        this.#mappings.forget(id);
        throw new ObjectFreedError(
          id,
          ` (or session ${owner} ended, or it is a small object kept in that session's memory, which ` +
            'only processes connected to the session can read)',
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** The serialized bytes of `id`'s first `size` bytes, as a view of this process's mapping. */
  bytes(id: string, size: number): Uint8Array {
    return new Uint8Array(this.#mappings.map(id, this.#path(id), size));
  }

  /**
   * Throws the file system's error (ENOENT) unless `id`'s segment exists now: a cached mapping
   * must not outlive the object.
   */
  check(id: string, owner?: string): void {
    accessSync(this.#path(id, owner));
  }

  /** Writes an encoded value as `id`'s new segment (one pwrite per part, straight from its buffers). */
  writeEncoded(id: string, encoded: EncodedValue): void {
    writeEncodedSegment(this.#path(id), encoded);
  }

  /**
   * Writes an encoded value into the file `name` (`lent.N`) the store lent for it in answer to a
   * reservation: memory already there, so the copy runs at memory speed.
   * @throws RangeError when `name` is not a lent file's name.
   */
  writeEncodedLent(name: string, encoded: EncodedValue): void {
    if (!LENT_FILE_PATTERN.test(name)) throw new RangeError(`Expected the name of a lent file (lent.N), got \`${name}\``);
    writeEncodedLent(join(this.directory, name), encoded);
  }

  /** Writes serialized bytes as `id`'s new segment. */
  writeBytes(id: string, bytes: Uint8Array): void {
    writeEncodedBytes(this.#path(id), bytes);
  }

  /**
   * A writer of a new TypedArray object `id` made in place (see `store.create`). Once sealed, its
   * mapping serves this process's reads of the object.
   */
  create(id: string, kind: string, length: number, host: WriterHost): ObjectWriter<ArrayBufferView> {
    return new ObjectWriter(kind, length, this.#path(id), {
      ...host,
      publish: (size, mapping) => {
        const ref = host.publish(size, mapping);
        this.#mappings.adopt(id, mapping);
        return ref;
      },
    });
  }

  /**
   * Stops holding the mappings of `ids` (each is unmapped once no view of it remains). Returns the
   * bytes of their mappings still alive (see `MappingCache.forget`).
   */
  forget(ids: Iterable<string>): number {
    let mapped = 0;
    for (const id of ids) mapped += this.#mappings.forget(id);
    return mapped;
  }

  /** Stops holding these objects' mappings strongly (see MappingCache.release): collected once no view needs them. */
  release(ids: Iterable<string>): void {
    for (const id of ids) this.#mappings.release(id);
  }

  /** Stops holding every mapping. */
  clear(): void {
    this.#mappings.clear();
  }

  #path(id: string, owner?: string): string {
    return owner === undefined ? join(this.directory, id) : segmentPathOf(this.#root, owner, id);
  }
}
