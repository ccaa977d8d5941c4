import { planLayout, frontLength, writeFront, type Layout } from '../layout.js';
import { ACTOR_INFO, ActorHandle } from '../actor-handle.js';
import { ObjectRef } from '../object-ref.js';
import { ERROR_OWN_FIELDS, MAX_DEPTH, NEG_ZERO_NODE, TAG, TYPED_ARRAYS, Tagged, VIEW_KIND_INDEX, packr } from './tags.js';
import { describeFunction, describeKey, describeObject, formatPath, type PathSegment } from './value-path.js';
import { argumentError } from '../errors/argument-error.js';

// Value -> header plus out-of-band buffers (see tags.ts for the header's vocabulary).

const SUPPORTED =
  'Only primitives, plain objects, arrays, Map, Set, Date, RegExp, Error, BigInt, ArrayBuffer, ' +
  'TypedArrays, DataView, Buffer and ObjectRef can be stored.';

/** A value turned into a header and out-of-band buffers, ready to be written anywhere. */
export interface EncodedValue {
  /** The msgpackr header. */
  readonly header: Uint8Array;
  /** The out-of-band buffers, as views over the caller's memory (nothing was copied yet). */
  readonly buffers: readonly Uint8Array[];
  /** ObjectRefs nested in the value (their objects must outlive this one). */
  readonly refs: readonly ObjectRef[];
  /** Where header and buffers go. */
  readonly layout: Layout;
}

class Encoder {
  readonly buffers: Uint8Array[] = [];
  readonly refs: ObjectRef[] = [];
  readonly #seen = new Map<object, number>();
  readonly #path: PathSegment[] = [];
  readonly #root: string;
  #depth = 0;

  constructor(root: string) {
    this.#root = root;
  }

  value(value: unknown): unknown {
    switch (typeof value) {
      case 'number':
        return value === 0 && 1 / value < 0 ? NEG_ZERO_NODE : value;
      case 'string':
        // msgpack strings are UTF-8: a lone surrogate would not survive the trip.
        return value.isWellFormed() ? value : illFormed(value);
      case 'boolean':
      case 'undefined':
        return value;
      case 'bigint':
        return new Tagged(TAG.BIGINT, value.toString());
      case 'object':
        return value === null ? null : this.#object(value);
      case 'function':
        return this.#fail(`${describeFunction(value as Function)} cannot be stored (to run code elsewhere, use remote(fn))`);
      default:
        return this.#fail(`a ${typeof value} cannot be stored. ${SUPPORTED}`);
    }
  }

  #child(key: PathSegment, value: unknown): unknown {
    this.#path.push(key);
    const result = this.value(value);
    this.#path.pop();
    return result;
  }

  #object(object: object): unknown {
    const seen = this.#seen.get(object);
    if (seen !== undefined) return new Tagged(TAG.BACKREF, seen);
    this.#seen.set(object, this.#seen.size);
    if (++this.#depth > MAX_DEPTH) {
      this.#fail(`nested more than ${MAX_DEPTH} levels deep, which Shoal refuses to store; flatten the structure`);
    }
    const result = this.#body(object);
    this.#depth -= 1;
    return result;
  }

  #body(object: object): unknown {
    if (Array.isArray(object)) return this.#array(object);
    const proto: unknown = Object.getPrototypeOf(object);
    if (proto === Object.prototype || proto === null) return this.#plain(object as Record<string, unknown>);
    if (ArrayBuffer.isView(object)) return this.#view(object);
    if (object instanceof ObjectRef) {
      this.refs.push(object);
      return new Tagged(TAG.REF, [object.id, object.owner]);
    }
    if (object instanceof ActorHandle) {
      // The handle's lifetime ref is nested in the value: the actor lives while it is stored.
      const { ref, className, methods } = object[ACTOR_INFO];
      this.refs.push(ref);
      return new Tagged(TAG.ACTOR, [ref.id, ref.owner, className, [...methods]]);
    }
    if (object instanceof Map) {
      const entries: unknown[] = [];
      let index = 0;
      for (const [key, value] of object) {
        entries.push(this.#child({ text: `.keys()[${index}]` }, key));
        entries.push(this.#child({ text: `.get(${describeKey(key)})` }, value));
        index += 1;
      }
      return new Tagged(TAG.MAP, entries);
    }
    if (object instanceof Set) {
      const entries: unknown[] = [];
      let index = 0;
      for (const value of object) entries.push(this.#child({ text: `.values()[${index++}]` }, value));
      return new Tagged(TAG.SET, entries);
    }
    if (object instanceof Date) return new Tagged(TAG.DATE, object.getTime());
    if (object instanceof RegExp) return new Tagged(TAG.REGEXP, [object.source, object.flags]);
    if (object instanceof Error) return this.#error(object);
    if (object instanceof ArrayBuffer) return new Tagged(TAG.ARRAY_BUFFER, this.buffers.push(new Uint8Array(object)) - 1);
    if (object instanceof Boolean || object instanceof Number || object instanceof String || object instanceof BigInt) {
      return new Tagged(TAG.BOXED, this.value(object.valueOf()));
    }
    if (typeof SharedArrayBuffer !== 'undefined' && object instanceof SharedArrayBuffer) {
      return this.#fail(
        'SharedArrayBuffer cannot be stored: it is shared between the threads of one process only. ' +
          'Copy it into an ArrayBuffer or a TypedArray first',
      );
    }
    const name = describeObject(object);
    return this.#fail(
      `${name} cannot be stored. ${SUPPORTED}` +
        (name === 'Promise' ? ' Await the promise and store its result.' : ' Convert it to a plain object first.'),
    );
  }

  #plain(object: Record<string, unknown>): unknown {
    const keys = Object.keys(object);
    if (Object.prototype.hasOwnProperty.call(object, '__proto__') || !keys.every((key) => key.isWellFormed())) {
      // msgpackr's decoder refuses a `__proto__` key, and map keys must be UTF-8: carry such
      // objects as an explicit key/value list.
      const entries: unknown[] = [];
      for (const key of keys) entries.push(this.value(key), this.#child(key, object[key]));
      return new Tagged(TAG.KEYED, entries);
    }
    const result: Record<string, unknown> = {};
    for (const key of keys) result[key] = this.#child(key, object[key]);
    return result;
  }

  #array(array: unknown[]): unknown {
    const length = array.length;
    // Find holes before encoding anything: every object encoded gets a number, so encoding must
    // not start over half-way.
    for (let i = 0; i < length; i++) {
      if (!(i in array)) return this.#sparse(array);
    }
    const result = new Array<unknown>(length);
    for (let i = 0; i < length; i++) result[i] = this.#child(i, array[i]);
    return result;
  }

  #sparse(array: unknown[]): unknown {
    const entries: unknown[] = [array.length];
    for (const key of Object.keys(array)) {
      const index = Number(key);
      if (Number.isInteger(index) && index >= 0 && index < array.length) {
        entries.push(index, this.#child(index, array[index]));
      }
    }
    return new Tagged(TAG.SPARSE, entries);
  }

  #view(view: ArrayBufferView): unknown {
    const kind: string = Buffer.isBuffer(view)
      ? 'Buffer'
      : ((view as unknown as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] ?? 'DataView');
    const kindIndex = VIEW_KIND_INDEX.get(kind);
    if (kindIndex === undefined) return this.#fail(`${kind} cannot be stored. ${SUPPORTED}`);
    const index = this.buffers.push(new Uint8Array(view.buffer, view.byteOffset, view.byteLength)) - 1;
    const length = kind === 'DataView' || kind === 'Buffer' ? view.byteLength : (view as Uint8Array).length;
    return new Tagged(TAG.VIEW, [kindIndex, index, length]);
  }

  #error(error: Error): unknown {
    const hasCause = 'cause' in error;
    const cause = hasCause ? this.#child('cause', error.cause) : undefined;
    const props: unknown[] = [];
    for (const key of Object.keys(error)) {
      if (!ERROR_OWN_FIELDS.has(key)) props.push(key, this.#child(key, (error as unknown as Record<string, unknown>)[key]));
    }
    const stack = typeof error.stack === 'string' ? error.stack : undefined;
    return new Tagged(TAG.ERROR, [String(error.name), String(error.message), stack, hasCause, cause, props]);
  }

  #fail(message: string): never {
    throw argumentError('ERR_NOT_STORABLE', `${formatPath(this.#root, this.#path)}: ${message}`);
  }
}

function illFormed(text: string): Tagged {
  const units = new Array<number>(text.length);
  for (let i = 0; i < text.length; i++) units[i] = text.charCodeAt(i);
  return new Tagged(TAG.ILL_FORMED_STRING, units);
}

/**
 * Encodes `value` into a header plus out-of-band buffers (views over the caller's memory).
 * `root` names the value in error messages: `value.conn: Socket cannot be stored ...`.
 *
 * @throws TypeError naming the path of the first value that cannot be stored.
 */
export function encodeValue(value: unknown, root = 'value'): EncodedValue {
  const encoder = new Encoder(root);
  let header: Uint8Array;
  try {
    header = packr.pack(encoder.value(value)) as Uint8Array;
  } catch (error) {
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      throw argumentError('ERR_NOT_STORABLE', `${root}: nested too deeply to store; flatten the structure`, { cause: error });
    }
    throw error;
  }
  const layout = planLayout(
    header.byteLength,
    encoder.buffers.map((buffer) => buffer.byteLength),
  );
  return { header, buffers: encoder.buffers, refs: encoder.refs, layout };
}

/** Lays an encoded value out contiguously in one new buffer (for inline objects and messages). */
export function writeInline(encoded: EncodedValue): Uint8Array {
  const bytes = new Uint8Array(encoded.layout.totalSize);
  writeFront(bytes, encoded.layout, encoded.header);
  encoded.buffers.forEach((buffer, i) => bytes.set(buffer, encoded.layout.bufferOffsets[i]!));
  return bytes;
}

/** Writes the part of an encoded value that precedes its buffers into a new small buffer. */
export function writeFrontBytes(encoded: EncodedValue): Uint8Array {
  const bytes = new Uint8Array(frontLength(encoded.layout));
  writeFront(bytes, encoded.layout, encoded.header);
  return bytes;
}

/**
 * Header and layout of an object that is one TypedArray of `length` elements whose bytes are
 * written later, in place (`store.create`). `kind` is the constructor's name, e.g. `'Float64Array'`.
 */
export function encodeViewShell(kind: string, length: number): { header: Uint8Array; layout: Layout } {
  const ctor = TYPED_ARRAYS[kind];
  const kindIndex = VIEW_KIND_INDEX.get(kind);
  if (!ctor || kindIndex === undefined) throw argumentError('ERR_INVALID_ARGUMENT', `Expected a TypedArray constructor, got \`${kind}\``);
  const header = packr.pack(new Tagged(TAG.VIEW, [kindIndex, 0, length])) as Uint8Array;
  return { header, layout: planLayout(header.byteLength, [length * ctor.BYTES_PER_ELEMENT]) };
}
