import { closeSync, read as readCallback } from 'node:fs';
import { promisify } from 'node:util';

const readAt = promisify(readCallback);

/** Where a spilled object's bytes are on disk: an open descriptor of its batch file and the object's offset in it. */
export interface SpilledBytes {
  readonly fd: number;
  readonly offset: number;
}

/**
 * A stored segment object opened to be sent elsewhere (to another node): in memory, a private
 * mapping of its segment made for this reader, whose pages stay valid until the reader is
 * collected even if the object is freed meanwhile (`chunk`); spilled, an open descriptor of its
 * spill file, read as it is sent (`read`) without reading it back into the store first. Either
 * way `close()` once sent (it closes the descriptor).
 *
 * @example
 * ```ts
 * const outgoing = store.openForRead(id);
 * try {
 *   for (let offset = 0; offset < outgoing.size; offset += CHUNK) {
 *     const length = Math.min(CHUNK, outgoing.size - offset);
 *     socket.write(outgoing.onDisk ? await outgoing.read(offset, length) : outgoing.chunk(offset, length));
 *   }
 * } finally {
 *   outgoing.close();
 * }
 * ```
 */
export class OutgoingObject {
  readonly id: string;
  /** Bytes the object takes (header included). */
  readonly size: number;
  readonly #mapping: ArrayBuffer | undefined;
  readonly #disk: SpilledBytes | undefined;
  #closed = false;
  /** Reads of the spill file not finished: the descriptor is closed after the last. */
  #reading = 0;

  /** @internal Made by `store.openForRead`: from a mapping, or from a spill file. */
  constructor(id: string, size: number, source: ArrayBuffer | SpilledBytes) {
    this.id = id;
    this.size = size;
    if (source instanceof ArrayBuffer) this.#mapping = source;
    else this.#disk = source;
  }

  /** Whether the bytes come from the spill disk (`read` them) rather than from memory (`chunk`). */
  get onDisk(): boolean {
    return this.#disk !== undefined;
  }

  /** `length` bytes from `offset`, as a view of the mapping (no copy); the view keeps it mapped. */
  chunk(offset: number, length: number): Buffer {
    if (!this.#mapping) throw new Error(`object ${this.id} is on disk: read() its bytes`);
    return Buffer.from(this.#mapping, offset, length);
  }

  /**
   * `length` bytes from `offset`, in a new buffer: read from the spill file (or, in memory, a
   * view of the mapping).
   * @throws Error with the disk's errno when the file cannot be read, or ends early.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    if (!this.#disk) return this.chunk(offset, length);
    if (this.#closed) throw new Error(`object ${this.id} was closed`);
    const buffer = Buffer.allocUnsafe(length);
    this.#reading += 1;
    try {
      for (let done = 0; done < length; ) {
        const { bytesRead } = await readAt(this.#disk.fd, buffer, done, length - done, this.#disk.offset + offset + done);
        if (bytesRead === 0) throw Object.assign(new Error(`the spill file of object ${this.id} ends early`), { code: 'EIO' });
        done += bytesRead;
      }
    } finally {
      this.#reading -= 1;
      // Closed meanwhile: the descriptor goes now, never under a read (its number could be reused).
      if (this.#closed && this.#reading === 0) closeSync(this.#disk.fd);
    }
    return buffer;
  }

  /** Done sending: the spill file's descriptor is closed (a read in flight finishes first). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#disk && this.#reading === 0) closeSync(this.#disk.fd);
  }
}
