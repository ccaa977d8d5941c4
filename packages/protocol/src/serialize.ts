import { addExtension, Packr } from 'msgpackr';
import { ObjectCorruptError } from './errors.js';
import { isValidId } from './ids.js';
import { frontLength, planLayout, readLayout, writeFront, type Layout } from './layout.js';
import { ObjectRef } from './object-ref.js';

/**
 * Values become a msgpackr header plus out-of-band buffers (see layout.ts). The header is the
 * value's tree with everything msgpack cannot say itself replaced by a {@link Tagged} node; every
 * ArrayBuffer and view becomes an index into the out-of-band buffers, so decoding from a segment
 * rebuilds it as a view in place, with no copy.
 *
 * Every object gets a number in pre-order, on both sides, so an object met again (shared or
 * cyclic) is written once and referred back to by number: identity and cycles round-trip, as
 * with structured clone.
 */
class Tagged {
  constructor(
    readonly tag: number,
    readonly data: unknown,
  ) {}
}

/** One msgpack extension type carries all of Shoal's tags. */
const EXT_TYPE = 0x53;
addExtension({
  Class: Tagged,
  type: EXT_TYPE,
  write: (t: Tagged) => [t.tag, t.data],
  read: (data: unknown) => {
    if (!Array.isArray(data) || data.length !== 2 || typeof data[0] !== 'number') return new Tagged(-1, data);
    return new Tagged(data[0], data[1]);
  },
});

// variableMapSize: objects may have more than 65535 keys. useToJSON: an own `toJSON` key is data.
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  bundleStrings: false,
  structuredClone: false,
  variableMapSize: true,
  useToJSON: false,
});

const NEG_ZERO = 0;
const BIGINT = 1;
const SPARSE = 2;
const MAP = 3;
const SET = 4;
const DATE = 5;
const REGEXP = 6;
const ERROR = 7;
const ARRAY_BUFFER = 8;
const VIEW = 9;
const REF = 10;
const BACKREF = 11;
const BOXED = 12;
const KEYED = 13;
const ILL_FORMED_STRING = 14;

const NEG_ZERO_NODE = new Tagged(NEG_ZERO, 0);

/** View kinds by index in the header; `Buffer` is Node's, decoded as a Buffer again. */
const VIEW_KINDS = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
  'DataView',
  'Buffer',
] as const;
type ViewKind = (typeof VIEW_KINDS)[number];
type TypedArrayConstructor =
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Uint8ClampedArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;
const TYPED_ARRAYS: Record<string, TypedArrayConstructor> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};
const VIEW_KIND_INDEX = new Map<string, number>(VIEW_KINDS.map((kind, index) => [kind, index]));

const ERROR_TYPES: Record<string, ErrorConstructor> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};
const ERROR_OWN_FIELDS = new Set(['name', 'message', 'stack', 'cause']);

/** Deeper than this, a value is refused with a clear error rather than overflowing the stack. */
export const MAX_DEPTH = 1000;

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

type PathSegment = string | number | { readonly text: string };

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
        return new Tagged(BIGINT, value.toString());
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
    if (seen !== undefined) return new Tagged(BACKREF, seen);
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
      return new Tagged(REF, [object.id, object.owner]);
    }
    if (object instanceof Map) {
      const entries: unknown[] = [];
      let index = 0;
      for (const [key, value] of object) {
        entries.push(this.#child({ text: `.keys()[${index}]` }, key));
        entries.push(this.#child({ text: `.get(${describeKey(key)})` }, value));
        index += 1;
      }
      return new Tagged(MAP, entries);
    }
    if (object instanceof Set) {
      const entries: unknown[] = [];
      let index = 0;
      for (const value of object) entries.push(this.#child({ text: `.values()[${index++}]` }, value));
      return new Tagged(SET, entries);
    }
    if (object instanceof Date) return new Tagged(DATE, object.getTime());
    if (object instanceof RegExp) return new Tagged(REGEXP, [object.source, object.flags]);
    if (object instanceof Error) return this.#error(object);
    if (object instanceof ArrayBuffer) return new Tagged(ARRAY_BUFFER, this.buffers.push(new Uint8Array(object)) - 1);
    if (object instanceof Boolean || object instanceof Number || object instanceof String || object instanceof BigInt) {
      return new Tagged(BOXED, this.value(object.valueOf()));
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
      return new Tagged(KEYED, entries);
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
    return new Tagged(SPARSE, entries);
  }

  #view(view: ArrayBufferView): unknown {
    const kind: string = Buffer.isBuffer(view)
      ? 'Buffer'
      : ((view as unknown as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] ?? 'DataView');
    const kindIndex = VIEW_KIND_INDEX.get(kind);
    if (kindIndex === undefined) return this.#fail(`${kind} cannot be stored. ${SUPPORTED}`);
    const index = this.buffers.push(new Uint8Array(view.buffer, view.byteOffset, view.byteLength)) - 1;
    const length = kind === 'DataView' || kind === 'Buffer' ? view.byteLength : (view as Uint8Array).length;
    return new Tagged(VIEW, [kindIndex, index, length]);
  }

  #error(error: Error): unknown {
    const hasCause = 'cause' in error;
    const cause = hasCause ? this.#child('cause', error.cause) : undefined;
    const props: unknown[] = [];
    for (const key of Object.keys(error)) {
      if (!ERROR_OWN_FIELDS.has(key)) props.push(key, this.#child(key, (error as unknown as Record<string, unknown>)[key]));
    }
    const stack = typeof error.stack === 'string' ? error.stack : undefined;
    return new Tagged(ERROR, [String(error.name), String(error.message), stack, hasCause, cause, props]);
  }

  #fail(message: string): never {
    throw new TypeError(`${formatPath(this.#root, this.#path)}: ${message}`);
  }
}

function formatPath(root: string, path: readonly PathSegment[]): string {
  let text = root;
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (typeof segment === 'string') text += /^[A-Za-z_$][\w$]*$/.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`;
    else text += segment.text;
  }
  // A path thousands of levels deep helps nobody: keep its ends.
  return text.length > 200 ? `${text.slice(0, 90)}...${text.slice(-90)}` : text;
}

function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key.length > 40 ? `${key.slice(0, 37)}...` : key);
  if (typeof key === 'number' || typeof key === 'boolean' || key === null || key === undefined) return String(key);
  if (typeof key === 'bigint') return `${key}n`;
  return `<${describeObject(key as object)}>`;
}

function describeFunction(fn: Function): string {
  return fn.name ? `function ${fn.name}` : 'a function';
}

function describeObject(object: object): string {
  const ctor = (object as { constructor?: { name?: unknown } }).constructor;
  if (typeof ctor?.name === 'string' && ctor.name !== '') return ctor.name;
  return Object.prototype.toString.call(object).slice(8, -1);
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
      throw new TypeError(`${root}: nested too deeply to store; flatten the structure`, { cause: error });
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
      case NEG_ZERO:
        return -0;
      case BIGINT:
        if (typeof data !== 'string') break;
        return BigInt(data);
      case BACKREF: {
        if (!isLength(data) || data >= this.#objects.length) break;
        return this.#objects[data];
      }
      case DATE:
        if (typeof data !== 'number') break;
        return this.#register(new Date(data));
      case REGEXP:
        if (!isTuple(data, 2) || typeof data[0] !== 'string' || typeof data[1] !== 'string') break;
        return this.#register(new RegExp(data[0], data[1]));
      case MAP: {
        if (!Array.isArray(data) || data.length % 2 !== 0) break;
        const map = this.#register(new Map<unknown, unknown>());
        for (let i = 0; i < data.length; i += 2) map.set(this.revive(data[i]), this.revive(data[i + 1]));
        return map;
      }
      case SET: {
        if (!Array.isArray(data)) break;
        const set = this.#register(new Set<unknown>());
        for (const entry of data) set.add(this.revive(entry));
        return set;
      }
      case SPARSE: {
        if (!Array.isArray(data) || data.length % 2 !== 1 || !isLength(data[0]) || data[0] > MAX_ARRAY_LENGTH) break;
        const array = this.#register(new Array<unknown>(data[0]));
        for (let i = 1; i < data.length; i += 2) {
          const index = data[i];
          if (!isLength(index) || index >= array.length) return this.#corrupt('sparse array index out of range');
          array[index] = this.revive(data[i + 1]);
        }
        return array;
      }
      case KEYED: {
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
      case ERROR:
        return this.#error(data);
      case ARRAY_BUFFER: {
        if (typeof data !== 'number') break;
        const [offset, length] = this.#buffer(data);
        if (this.#options.copy || !this.#options.sliceArrayBuffer) {
          return this.#register(this.#base.slice(offset, offset + length));
        }
        return this.#register(this.#options.sliceArrayBuffer(this.#base, offset, length));
      }
      case VIEW:
        return this.#view(data);
      case REF: {
        if (!isTuple(data, 2)) break;
        const [id, owner] = data;
        if (!isValidId(id) || !isValidId(owner)) break;
        return this.#register(new ObjectRef(id, owner));
      }
      case BOXED: {
        const primitive = this.revive(data);
        if (!['string', 'number', 'boolean', 'bigint'].includes(typeof primitive)) break;
        return this.#register(Object(primitive));
      }
      case ILL_FORMED_STRING:
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
    const ErrorType = Object.prototype.hasOwnProperty.call(ERROR_TYPES, name) ? ERROR_TYPES[name]! : Error;
    const error = this.#register(new ErrorType(message));
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

const MAX_ARRAY_LENGTH = 2 ** 32 - 1;

function illFormed(text: string): Tagged {
  const units = new Array<number>(text.length);
  for (let i = 0; i < text.length; i++) units[i] = text.charCodeAt(i);
  return new Tagged(ILL_FORMED_STRING, units);
}

function isTuple(value: unknown, length: number): value is unknown[] {
  return Array.isArray(value) && value.length === length;
}

function isLength(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

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
  }
  try {
    return new Reviver(bytes, layout, options).revive(tree);
  } catch (error) {
    if (error instanceof ObjectCorruptError) throw error;
    // Malformed tag data (a bad BigInt, RegExp, or a header nested deeper than the stack).
    throw new ObjectCorruptError(where, `its header does not decode (${(error as Error).message})`);
  }
}

/** The TypedArray constructors Shoal stores, by name. */
export const TYPED_ARRAY_CONSTRUCTORS: Readonly<Record<string, TypedArrayConstructor>> = TYPED_ARRAYS;
export type { TypedArrayConstructor };

/**
 * Header and layout of an object that is one TypedArray of `length` elements whose bytes are
 * written later, in place (`store.create`). `kind` is the constructor's name, e.g. `'Float64Array'`.
 */
export function encodeViewShell(kind: string, length: number): { header: Uint8Array; layout: Layout } {
  const ctor = TYPED_ARRAYS[kind];
  const kindIndex = VIEW_KIND_INDEX.get(kind);
  if (!ctor || kindIndex === undefined) throw new TypeError(`Expected a TypedArray constructor, got \`${kind}\``);
  const header = packr.pack(new Tagged(VIEW, [kindIndex, 0, length])) as Uint8Array;
  return { header, layout: planLayout(header.byteLength, [length * ctor.BYTES_PER_ELEMENT]) };
}
