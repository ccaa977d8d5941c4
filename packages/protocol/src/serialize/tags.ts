// The header's vocabulary: the Tagged node, its msgpack extension and tag numbers, the view
// and error kinds both sides agree on, and the shared Packr. Note that msgpackr's
// `addExtension` is global: every Packr of the process (framing's too) encodes `Tagged`.
import { addExtension, Packr } from 'msgpackr';

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
export class Tagged {
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
export const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  bundleStrings: false,
  structuredClone: false,
  variableMapSize: true,
  useToJSON: false,
});

/** The tag numbers of {@link Tagged} nodes: stored in every header, so never renumber one. */
export const TAG = {
  NEG_ZERO: 0,
  BIGINT: 1,
  SPARSE: 2,
  MAP: 3,
  SET: 4,
  DATE: 5,
  REGEXP: 6,
  ERROR: 7,
  ARRAY_BUFFER: 8,
  VIEW: 9,
  REF: 10,
  BACKREF: 11,
  BOXED: 12,
  KEYED: 13,
  ILL_FORMED_STRING: 14,
  ACTOR: 15,
} as const;

export const NEG_ZERO_NODE = new Tagged(TAG.NEG_ZERO, 0);

/** View kinds by index in the header; `Buffer` is Node's, decoded as a Buffer again. */
export const VIEW_KINDS = [
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
export type ViewKind = (typeof VIEW_KINDS)[number];
export type TypedArrayConstructor =
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
export const TYPED_ARRAYS: Record<string, TypedArrayConstructor> = {
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
export const VIEW_KIND_INDEX = new Map<string, number>(VIEW_KINDS.map((kind, index) => [kind, index]));

export const ERROR_TYPES: Record<string, ErrorConstructor> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};
export const ERROR_OWN_FIELDS = new Set(['name', 'message', 'stack', 'cause']);

/** Deeper than this, a value is refused with a clear error rather than overflowing the stack. */
export const MAX_DEPTH = 1000;

/** The longest array JavaScript allows: a sparse array's declared length above it is corrupt. */
export const MAX_ARRAY_LENGTH = 2 ** 32 - 1;

/** Whether `value` is an array of exactly `length` entries (tag data of a fixed shape). */
export function isTuple(value: unknown, length: number): value is unknown[] {
  return Array.isArray(value) && value.length === length;
}

/** Whether `value` is a non-negative safe integer (an index, a count, a length). */
export function isLength(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The TypedArray constructors Shoal stores, by name. */
export const TYPED_ARRAY_CONSTRUCTORS: Readonly<Record<string, TypedArrayConstructor>> = TYPED_ARRAYS;

