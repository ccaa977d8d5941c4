import { TYPED_ARRAY_CONSTRUCTORS, encodeViewShell, writeFront, argumentError, type ObjectRef, type TypedArrayConstructor } from '@shoal/protocol';
import { closeSegment, createSegment, fillSegment, mapSegment, remapPrivate, removeQuietly, unlinkSegment } from './segment-files.js';

/** A TypedArray constructor that `store.create` accepts. */
export type TypedArrayKind = TypedArrayConstructor;

/** What a writer needs from its store. */
export interface WriterHost {
  /** Objects smaller than this are written in ordinary memory and put inline on seal. */
  readonly inlineThreshold: number;
  reserve(size: number): void;
  unreserve(size: number): void;
  publish(size: number, mapping: ArrayBuffer): ObjectRef;
  publishInline(array: ArrayBufferView): ObjectRef;
}

/** What an argument is, for an error message: its class name, or the primitive itself. */
export function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  return (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
}

/** Checks `store.create`'s arguments and names what is wrong. */
export function resolveCreateArguments(
  typeOrBytes: unknown,
  length: unknown,
): { kind: string; length: number } {
  if (typeof typeOrBytes === 'number') {
    if (!Number.isSafeInteger(typeOrBytes) || typeOrBytes < 0) {
      throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`byteLength\` to be a non-negative integer, got \`${String(typeOrBytes)}\``);
    }
    return { kind: 'Uint8Array', length: typeOrBytes };
  }
  const name = typeof typeOrBytes === 'function' ? (typeOrBytes as { name?: string }).name : undefined;
  if (name === undefined || TYPED_ARRAY_CONSTRUCTORS[name] !== typeOrBytes) {
    throw argumentError('ERR_INVALID_ARGUMENT',
      `Expected a TypedArray constructor (e.g. Float64Array) or a byte length, got \`${name ?? String(typeOrBytes)}\``,
    );
  }
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`length\` to be a non-negative integer, got \`${String(length)}\``);
  }
  return { kind: name, length };
}

type WriterState = 'open' | 'sealed' | 'aborted';

// A writer dropped without seal() or abort() would leave its file and reservation behind.
const abandoned = new FinalizationRegistry<() => void>((abort) => abort());

/**
 * A new object being written in place: fill `array`, then `seal()` to publish it (or `abort()`).
 *
 * Until sealed, `array` is a shared mapping of the segment. Sealing turns it, in place, into a
 * copy-on-write mapping: the array stays usable, but from then on its writes stay in this
 * process, so the stored object can no longer change.
 */
export class ObjectWriter<A extends ArrayBufferView> {
  /** The array to fill: a view straight into the new segment. */
  readonly array: A;
  /** Bytes the object takes, header included. */
  readonly size: number;
  readonly #path: string;
  readonly #host: WriterHost;
  /** The shared mapping of the segment; undefined for a small object written in ordinary memory. */
  readonly #mapping: ArrayBuffer | undefined;
  readonly #token = {};
  #fd: number;
  #state: WriterState = 'open';

  /** @internal Made by `store.create`. */
  constructor(kind: string, length: number, path: string, host: WriterHost) {
    const { header, layout } = encodeViewShell(kind, length);
    const Ctor = TYPED_ARRAY_CONSTRUCTORS[kind]!;
    this.size = layout.totalSize;
    this.#path = path;
    this.#host = host;
    if (this.size < host.inlineThreshold) {
      // Small objects stay inline: a segment and a mapping would cost more than the copy on seal.
      this.array = new Ctor(length) as unknown as A;
      this.#mapping = undefined;
      this.#fd = -1;
      return;
    }
    host.reserve(this.size);
    let fd = -1;
    try {
      fd = createSegment(path, this.size);
      const front = new Uint8Array(layout.headerOffset + layout.headerLength);
      writeFront(front, layout, header);
      fillSegment(fd, this.size, [front], [0], path);
      this.#mapping = mapSegment(fd, this.size, { shared: true }, path);
    } catch (error) {
      if (fd >= 0) {
        closeSegment(fd, path);
        unlinkSegment(path);
      }
      host.unreserve(this.size);
      throw error;
    }
    this.#fd = fd;
    this.array = new Ctor(this.#mapping, layout.bufferOffsets[0]!, length) as unknown as A;
    const size = this.size;
    abandoned.register(this, () => discard(fd, path, () => host.unreserve(size)), this.#token);
  }

  get state(): WriterState {
    return this.#state;
  }

  /**
   * Publishes the object and returns its ref. `array` stays valid; later writes to it are
   * private to this process.
   * @throws Error when already sealed or aborted.
   */
  seal(): ObjectRef<A> {
    this.#assertOpen('seal');
    if (!this.#mapping) {
      this.#state = 'sealed';
      return this.#host.publishInline(this.array) as ObjectRef<A>;
    }
    remapPrivate(this.#mapping, this.#fd, this.#path);
    closeSegment(this.#fd, this.#path);
    this.#fd = -1;
    this.#state = 'sealed';
    abandoned.unregister(this.#token);
    return this.#host.publish(this.size, this.#mapping) as ObjectRef<A>;
  }

  /** Discards the unsealed object and its segment. Idempotent after an abort. */
  abort(): void {
    if (this.#state === 'aborted') return;
    this.#assertOpen('abort');
    this.#state = 'aborted';
    if (!this.#mapping) return;
    abandoned.unregister(this.#token);
    discard(this.#fd, this.#path, () => this.#host.unreserve(this.size));
    this.#fd = -1;
  }

  #assertOpen(operation: string): void {
    if (this.#state !== 'open') {
      throw new Error(`Cannot ${operation} this object writer: it is already ${this.#state}.`);
    }
  }
}

function discard(fd: number, path: string, unreserve: () => void): void {
  removeQuietly(fd, path);
  unreserve();
}
