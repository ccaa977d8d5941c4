/**
 * A stored segment object opened to be sent elsewhere (to another node), in views: a private
 * mapping of its segment, made for this reader. The pages stay valid until the reader is
 * collected, even if the object is freed meanwhile.
 *
 * @example
 * ```ts
 * const outgoing = store.openForRead(id);
 * for (let offset = 0; offset < outgoing.size; offset += CHUNK) {
 *   socket.send(outgoing.chunk(offset, Math.min(CHUNK, outgoing.size - offset)));
 * }
 * ```
 */
export class OutgoingObject {
  readonly id: string;
  /** Bytes the object takes (header included). */
  readonly size: number;
  readonly #mapping: ArrayBuffer;

  /** @internal Made by `store.openForRead`. */
  constructor(id: string, size: number, mapping: ArrayBuffer) {
    this.id = id;
    this.size = size;
    this.#mapping = mapping;
  }

  /** `length` bytes from `offset`, as a view of the mapping (no copy); the view keeps it mapped. */
  chunk(offset: number, length: number): Buffer {
    return Buffer.from(this.#mapping, offset, length);
  }
}
