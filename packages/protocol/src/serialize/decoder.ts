import { ObjectCorruptError, errorClassOf } from '../errors.js';
import { isValidId } from '../ids.js';
import { readLayout, type Layout } from '../layout.js';
import { ActorHandle } from '../actor-handle.js';
import { ObjectRef } from '../object-ref.js';
import { ERROR_TYPES, MAX_ARRAY_LENGTH, TAG, TYPED_ARRAYS, Tagged, VIEW_KINDS, isLength, isTuple, packr, type ViewKind } from './tags.js';

// Stored bytes -> value: the header decoded, then every Tagged node revived, views made over
// the bytes in place unless a copy is asked for. Anything malformed is ObjectCorruptError.

/** How to rebuild a value. */
export interface DecodeOptions {
  /**
   * Copy every binary out of `bytes` (for inline objects, whose bytes are shared by every get in
   * the process) instead of viewing it in place (for a private mapping of a segment).
   */
  readonly copy: boolean;
  /**
   * Makes an ArrayBuffer over part of another without copying (the shm addon's `sliceBuffer`).
   * Without it, ArrayBuffer values are copied; views never are (unless `copy`).
   */
  readonly sliceArrayBuffer?: (buffer: ArrayBuffer, offset: number, length: number) => ArrayBuffer;
  /** Names the object in errors, e.g. `object abc123`. */
  readonly where?: string;
}

class Reviver {
  readonly #objects: unknown[] = [];
  readonly #base: ArrayBuffer;
  readonly #baseOffset: number;
  readonly #layout: Layout;
  readonly #options: DecodeOptions;
  readonly #where: string;

  constructor(bytes: Uint8Array, layout: Layout, options: DecodeOptions) {
    this.#base = bytes.buffer as ArrayBuffer;
    this.#baseOffset = bytes.byteOffset;
    this.#layout = layout;
    this.#options = options;
    this.#where = options.where ?? 'object';
  }

  revive(node: unknown): unknown {
    if (node === null || typeof node !== 'object') return node;
    if (node instanceof Tagged) return this.#tagged(node);
    this.#objects.push(node);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) node[i] = this.revive(node[i]);
      return node;
    }
    const object = node as Record<string, unknown>;
    for (const key of Object.keys(object)) object[key] = this.revive(object[key]);
    return object;
  }

  #register<T>(value: T): T {
    this.#objects.push(value);
    return value;
  }

  #tagged(node: Tagged): unknown {
    const data = node.data;
    switch (node.tag) {
      case TAG.NEG_ZERO:
        return -0;
      case TAG.BIGINT:
        if (typeof data !== 'string') break;
        return BigInt(data);
      case TAG.BACKREF: {
        if (!isLength(data) || data >= this.#objects.length) break;
        return this.#objects[data];
      }
      case TAG.DATE:
        if (typeof data !== 'number') break;
        return this.#register(new Date(data));
      case TAG.REGEXP:
        if (!isTuple(data, 2) || typeof data[0] !== 'string' || typeof data[1] !== 'string') break;
        return this.#register(new RegExp(data[0], data[1]));
      case TAG.MAP: {
        if (!Array.isArray(data) || data.length % 2 !== 0) break;
        const map = this.#register(new Map<unknown, unknown>());
        for (let i = 0; i < data.length; i += 2) map.set(this.revive(data[i]), this.revive(data[i + 1]));
        return map;
      }
      case TAG.SET: {
        if (!Array.isArray(data)) break;
        const set = this.#register(new Set<unknown>());
        for (const entry of data) set.add(this.revive(entry));
        return set;
      }
      case TAG.SPARSE: {
        if (!Array.isArray(data) || data.length % 2 !== 1 || !isLength(data[0]) || data[0] > MAX_ARRAY_LENGTH) break;
        const array = this.#register(new Array<unknown>(data[0]));
        for (let i = 1; i < data.length; i += 2) {
          const index = data[i];
          if (!isLength(index) || index >= array.length) return this.#corrupt('sparse array index out of range');
          array[index] = this.revive(data[i + 1]);
        }
        return array;
      }
      case TAG.KEYED: {
        if (!Array.isArray(data) || data.length % 2 !== 0) break;
        const object = this.#register({} as Record<string, unknown>);
        for (let i = 0; i < data.length; i += 2) {
          Object.defineProperty(object, String(this.revive(data[i])), {
            value: this.revive(data[i + 1]),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return object;
      }
      case TAG.ERROR:
        return this.#error(data);
      case TAG.ARRAY_BUFFER: {
        if (typeof data !== 'number') break;
        const [offset, length] = this.#buffer(data);
        if (this.#options.copy || !this.#options.sliceArrayBuffer) {
          return this.#register(this.#base.slice(offset, offset + length));
        }
        return this.#register(this.#options.sliceArrayBuffer(this.#base, offset, length));
      }
      case TAG.VIEW:
        return this.#view(data);
      case TAG.REF: {
        if (!isTuple(data, 2)) break;
        const [id, owner] = data;
        if (!isValidId(id) || !isValidId(owner)) break;
        return this.#register(new ObjectRef(id, owner));
      }
      case TAG.ACTOR: {
        if (!isTuple(data, 4)) break;
        const [id, owner, className, methods] = data;
        if (!isValidId(id) || !isValidId(owner) || typeof className !== 'string') break;
        if (!Array.isArray(methods) || !methods.every((method) => typeof method === 'string')) break;
        return this.#register(new ActorHandle({ ref: new ObjectRef(id, owner), className, methods }));
      }
      case TAG.BOXED: {
        const primitive = this.revive(data);
        if (!['string', 'number', 'boolean', 'bigint'].includes(typeof primitive)) break;
        return this.#register(Object(primitive));
      }
      case TAG.ILL_FORMED_STRING:
        if (!Array.isArray(data) || !data.every((unit) => typeof unit === 'number')) break;
        return String.fromCharCode(...(data as number[]));
      default:
        break;
    }
    return this.#corrupt(`malformed node with tag ${node.tag}`);
  }

  #buffer(index: unknown): [offset: number, length: number] {
    if (!isLength(index) || index >= this.#layout.bufferOffsets.length) {
      this.#corrupt(`reference to missing buffer ${String(index)}`);
    }
    return [this.#baseOffset + this.#layout.bufferOffsets[index]!, this.#layout.bufferLengths[index]!];
  }

  #view(data: unknown): unknown {
    if (!isTuple(data, 3) || !isLength(data[2])) return this.#corrupt('malformed view');
    const kind: ViewKind | undefined = isLength(data[0]) ? VIEW_KINDS[data[0]] : undefined;
    if (kind === undefined) return this.#corrupt('unknown view kind');
    const [offset, byteLength] = this.#buffer(data[1]);
    const length = data[2];
    const ctor = TYPED_ARRAYS[kind];
    const elementSize = ctor ? ctor.BYTES_PER_ELEMENT : 1;
    if (length * elementSize !== byteLength) return this.#corrupt(`${kind} length does not match its buffer`);
    let base = this.#base;
    let at = offset;
    if (this.#options.copy || at % elementSize !== 0) {
      base = this.#base.slice(offset, offset + byteLength);
      at = 0;
    }
    if (kind === 'Buffer') return this.#register(Buffer.from(base, at, byteLength));
    if (kind === 'DataView') return this.#register(new DataView(base, at, byteLength));
    return this.#register(new ctor!(base, at, length));
  }

  #error(data: unknown): unknown {
    if (!isTuple(data, 6)) return this.#corrupt('malformed error');
    const [name, message, stack, hasCause, cause, props] = data;
    if (typeof name !== 'string' || typeof message !== 'string' || !Array.isArray(props)) {
      return this.#corrupt('malformed error');
    }
    const error = this.#register(newError(name, message, props));
    if (error.name !== name) {
      Object.defineProperty(error, 'name', { value: name, writable: true, configurable: true, enumerable: false });
    }
    if (typeof stack === 'string') {
      Object.defineProperty(error, 'stack', { value: stack, writable: true, configurable: true, enumerable: false });
    } else {
      delete (error as { stack?: string }).stack;
    }
    if (hasCause === true) {
      Object.defineProperty(error, 'cause', { value: this.revive(cause), writable: true, configurable: true, enumerable: false });
    }
    for (let i = 0; i + 1 < props.length; i += 2) {
      Object.defineProperty(error, String(props[i]), {
        value: this.revive(props[i + 1]),
        writable: true,
        configurable: true,
        enumerable: true,
      });
    }
    return error;
  }

  #corrupt(detail: string): never {
    throw new ObjectCorruptError(this.#where, detail);
  }
}

/** A msgpack nil: what the decoder reads last, so that it holds no view of an object's bytes. */
const NIL = Uint8Array.of(0xc0);

/**
 * Rebuilds a value from its stored bytes. With `copy: false` every TypedArray, DataView and
 * Buffer is a view into `bytes.buffer` (zero-copy); ArrayBuffers are too when
 * `sliceArrayBuffer` is given.
 *
 * @throws ObjectCorruptError when the bytes are not a valid Shoal object.
 */
export function decodeValue(bytes: Uint8Array, options: DecodeOptions): unknown {
  const where = options.where ?? 'object';
  const layout = readLayout(bytes, where);
  let tree: unknown;
  try {
    tree = packr.unpack(bytes.subarray(layout.headerOffset, layout.headerOffset + layout.headerLength));
  } catch (error) {
    throw new ObjectCorruptError(where, `its header does not decode (${(error as Error).message})`);
  } finally {
    // msgpackr keeps a module-level view of the last source it read: of a segment, that would keep
    // its whole mapping (and the file's lock) alive after every view of it is gone, so that no
    // other process could reuse or spill it. Reading one byte of its own makes it let go.
    packr.unpack(NIL);
  }
  try {
    return new Reviver(bytes, layout, options).revive(tree);
  } catch (error) {
    if (error instanceof ObjectCorruptError) throw error;
    // Malformed tag data (a bad BigInt, RegExp, or a header nested deeper than the stack).
    throw new ObjectCorruptError(where, `its header does not decode (${(error as Error).message})`);
  }
}

/**
 * The error a stored one becomes: a Shoal error (its `code` names a registered class of the same
 * name) is rebuilt with its class, without its constructor (which would reword the message), so
 * `instanceof TaskError` holds in every process; a built-in error type with its own; anything
 * else as an Error.
 */
function newError(name: string, message: string, props: unknown[]): Error {
  for (let i = 0; i + 1 < props.length; i += 2) {
    if (props[i] !== 'code' || typeof props[i + 1] !== 'string') continue;
    const Known = errorClassOf(props[i + 1] as string);
    if (!Known || Known.name !== name) break;
    const error = Object.create(Known.prototype) as Error;
    Object.defineProperty(error, 'message', { value: message, writable: true, configurable: true, enumerable: false });
    return error;
  }
  const ErrorType = Object.prototype.hasOwnProperty.call(ERROR_TYPES, name) ? ERROR_TYPES[name]! : Error;
  return new ErrorType(message);
}
