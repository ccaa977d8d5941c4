import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { Packr } from 'msgpackr';
import { ActorDiedError, ObjectCorruptError, ShoalError, TaskError } from './errors.js';
import { ALIGNMENT, planLayout, writeFront, type Layout } from './layout.js';
import { ObjectRef } from './object-ref.js';
import {
  MAX_DEPTH,
  TYPED_ARRAY_CONSTRUCTORS,
  decodeValue,
  encodeValue,
  encodeViewShell,
  writeFrontBytes,
  writeInline,
  type DecodeOptions,
} from './serialize/index.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const COPY_MODES = [true, false] as const;

/** Encodes, lays out inline and decodes `value`. */
function roundTrip<T>(value: T, copy: boolean): T {
  return decodeValue(writeInline(encodeValue(value)), { copy }) as T;
}

/** `bytes` copied to start `shift` bytes into a larger ArrayBuffer. */
function shifted(bytes: Uint8Array, shift: number): Uint8Array {
  const backing = new Uint8Array(bytes.byteLength + shift + 64);
  backing.set(bytes, shift);
  return backing.subarray(shift, shift + bytes.byteLength);
}

/** Expects a TypeError whose message starts with `prefix` (and matches `pattern`, if given). */
function assertRejected(value: unknown, prefix: string, pattern?: RegExp, root?: string): void {
  assert.throws(
    () => encodeValue(value, root),
    (error: unknown) => {
      assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
      assert.ok(error.message.startsWith(prefix), `message ${JSON.stringify(error.message)} should start with ${JSON.stringify(prefix)}`);
      if (pattern) assert.match(error.message, pattern);
      return true;
    },
  );
}

/** Asserts `fn` throws an ObjectCorruptError (and nothing else). */
function assertCorrupt(fn: () => unknown, detail?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(
      error instanceof ObjectCorruptError,
      `expected ObjectCorruptError, got ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}`,
    );
    assert.equal(error.code, 'ERR_OBJECT_CORRUPT');
    if (detail) assert.match(error.message, detail);
    return true;
  });
}

/** Decodes `bytes`; returns a short description of any error that is not an ObjectCorruptError. */
function unexpectedDecodeError(bytes: Uint8Array, options: DecodeOptions): string | undefined {
  try {
    decodeValue(bytes, options);
    return undefined;
  } catch (error) {
    if (error instanceof ObjectCorruptError) return undefined;
    const e = error as Error;
    const frame = e.stack?.split('\n').find((line) => line.trimStart().startsWith('at ')) ?? '';
    return `${e.constructor.name} ${frame.trim()}`;
  }
}

/** A deterministic PRNG (mulberry32), so fuzz failures reproduce. */
function prng(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

// Crafting headers by hand, for corrupt-input tests: a Shoal node is msgpackr's tag-extension
// prefix followed by the packed pair [tag, data]. The prefix is taken from a real encoding.
const plainPackr = new Packr({ useRecords: false });
const pack = (value: unknown): Uint8Array => plainPackr.pack(value);
const TAG = { BIGINT: 1, SPARSE: 2, MAP: 3, REGEXP: 6, ERROR: 7, ARRAY_BUFFER: 8, VIEW: 9, REF: 10, BACKREF: 11 } as const;
const NODE_PREFIX: Uint8Array = (() => {
  const header = encodeValue(new Date(0)).header; // a DATE node (tag 5) holding 0
  const payload = pack([5, 0]);
  const prefix = header.subarray(0, header.byteLength - payload.byteLength);
  assert.deepEqual([...header.subarray(prefix.byteLength)], [...payload], 'a node is a prefix plus the packed [tag, data]');
  return prefix.slice();
})();
const node = (tag: number, data: unknown): Uint8Array => concat(NODE_PREFIX, pack([tag, data]));
const fixArray = (...items: Uint8Array[]): Uint8Array => concat(Uint8Array.of(0x90 | items.length), ...items);

/** A complete object with a hand-made header and zero-filled buffers of the given lengths. */
function craftObject(header: Uint8Array, bufferLengths: number[] = []): Uint8Array {
  const layout = planLayout(header.byteLength, bufferLengths);
  const bytes = new Uint8Array(layout.totalSize);
  writeFront(bytes, layout, header);
  return bytes;
}

const ID = 'Abcdef0123456789XYZa';
const OWNER = 'session00001';

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

describe('primitives round-trip exactly', () => {
  const numbers = [
    0, -0, 1, -1, 0.1, -1.5, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, -Number.MIN_VALUE,
    Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53 + 2, -(2 ** 63), 2 ** 64, 127, 128, 255, 256, 65535,
    65536, 4294967295, 4294967296, -32, -33, -2147483648, -2147483649,
  ];
  const bigints = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n, -(2n ** 200n) + 7n, 10n ** 100n];
  const strings = ['', 'a', 'héllo wörld', '日本語', '\u{1F600} emoji', '\0nul', 'x'.repeat(70_000)];

  for (const copy of COPY_MODES) {
    test(`numbers keep their exact value, including -0, NaN and ±Infinity (copy: ${copy})`, () => {
      for (const n of numbers) {
        const decoded = roundTrip(n, copy);
        assert.ok(Object.is(decoded, n), `${Object.is(n, -0) ? '-0' : n} decoded as ${Object.is(decoded, -0) ? '-0' : decoded}`);
      }
    });

    test(`BigInts keep their exact value, including large and negative ones (copy: ${copy})`, () => {
      for (const n of bigints) {
        const decoded = roundTrip(n, copy);
        assert.equal(typeof decoded, 'bigint');
        assert.equal(decoded, n);
      }
    });

    test(`strings, booleans, null and undefined round-trip (copy: ${copy})`, () => {
      for (const s of strings) assert.equal(roundTrip(s, copy), s);
      assert.equal(roundTrip(true, copy), true);
      assert.equal(roundTrip(false, copy), false);
      assert.equal(roundTrip(null, copy), null);
      assert.equal(roundTrip(undefined, copy), undefined);
    });
  }

  test('-0 keeps its sign when nested in objects, arrays and Map values', () => {
    const decoded = roundTrip({ a: -0, list: [1, -0], map: new Map([['z', -0]]) }, true);
    assert.ok(Object.is(decoded.a, -0));
    assert.ok(Object.is(decoded.list[1], -0));
    assert.ok(Object.is(decoded.map.get('z'), -0));
  });

  test('strings containing lone surrogates round-trip unchanged (as structured clone does)', () => {
    const short = 'a\uD800b';
    const long = `${'\uDC00x'.repeat(100)}`;
    assert.equal(roundTrip(short, true), short, 'short string with a lone high surrogate');
    assert.equal(roundTrip(long, true), long, 'long string with lone low surrogates');
    assert.deepEqual(Object.keys(roundTrip({ '\uD83D': 1 }, true)), ['\uD83D'], 'object key with a lone surrogate');
  });
});

describe('plain objects and arrays', () => {
  for (const copy of COPY_MODES) {
    test(`nested objects and arrays round-trip with key order intact (copy: ${copy})`, () => {
      const value = { b: 1, a: { deep: [1, 'two', { three: [3] }], empty: {} }, list: [], 10: 'ten', 2: 'two' };
      const decoded = roundTrip(value, copy);
      assert.deepStrictEqual(decoded, value);
      assert.deepEqual(Object.keys(decoded), Object.keys(value));
    });
  }

  test('a key holding undefined is kept, and undefined in an array is not a hole', () => {
    const decoded = roundTrip({ a: undefined, list: [undefined, 1] }, true);
    assert.ok(Object.hasOwn(decoded, 'a'));
    assert.equal(decoded.a, undefined);
    assert.ok(0 in decoded.list, 'index 0 holds undefined, it is not a hole');
    assert.equal(decoded.list.length, 2);
  });

  test('an object with more than 65535 keys round-trips', () => {
    const value: Record<string, number> = {};
    for (let i = 0; i < 65_536; i++) value[`k${i}`] = i;
    const decoded = roundTrip(value, true);
    assert.equal(Object.keys(decoded).length, 65_536);
    assert.equal(decoded.k65535, 65535);
  });

  test('arrays, Maps and Sets with more than 65535 entries round-trip', () => {
    const array = Array.from({ length: 70_000 }, (_, i) => i);
    const decoded = roundTrip({ array, map: new Map(array.map((i) => [i, i])), set: new Set(array) }, true);
    assert.equal(decoded.array.length, 70_000);
    assert.equal(decoded.map.get(69_999), 69_999);
    assert.equal(decoded.set.size, 70_000);
  });

  test('a null-prototype object keeps its keys and values', () => {
    const value = Object.assign(Object.create(null) as Record<string, unknown>, { x: 1, y: { z: 'deep' } });
    const decoded = roundTrip(value, true);
    assert.deepEqual({ ...decoded }, { x: 1, y: { z: 'deep' } });
  });

  test('an own "__proto__" key round-trips as data without prototype pollution', () => {
    const value = JSON.parse('{"a": 1, "__proto__": {"polluted": true}, "z": [1]}') as Record<string, unknown>;
    assert.ok(Object.hasOwn(value, '__proto__'), 'precondition: JSON.parse makes an own __proto__ key');
    for (const copy of COPY_MODES) {
      const decoded = roundTrip({ top: value, inList: [value], inMap: new Map([['m', value]]) }, copy);
      for (const object of [decoded.top, decoded.inList[0]!, decoded.inMap.get('m')!]) {
        assert.equal(Object.getPrototypeOf(object), Object.prototype, 'the prototype is still Object.prototype');
        assert.ok(Object.hasOwn(object, '__proto__'), '__proto__ is an own data property');
        assert.deepEqual(Object.getOwnPropertyDescriptor(object, '__proto__')?.value, { polluted: true });
        assert.deepEqual(Object.keys(object), ['a', '__proto__', 'z'], 'key order preserved');
        assert.deepEqual(object.z, [1]);
      }
      assert.equal(decoded.inList[0], decoded.top, 'identity of a __proto__-keyed object is kept');
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was not polluted');
    assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);
  });

  test('an object with own "constructor" and "toJSON" keys (e.g. parsed JSON) round-trips as data', () => {
    const value = JSON.parse('{"constructor": "Widget", "toJSON": "yes", "n": 1}') as Record<string, unknown>;
    assert.deepStrictEqual(roundTrip(value, true), value);
  });

  test('an object with an own "constructor" key alone round-trips', () => {
    const value = { constructor: { name: 'Widget' }, n: 1 };
    assert.deepStrictEqual(roundTrip(value, true), value);
  });
});

describe('sparse arrays', () => {
  for (const copy of COPY_MODES) {
    test(`holes are preserved, not filled with undefined (copy: ${copy})`, () => {
       
      const decoded = roundTrip([1, , 3, , undefined], copy);
      assert.equal(decoded.length, 5);
      assert.equal(1 in decoded, false, 'index 1 is a hole');
      assert.equal(3 in decoded, false, 'index 3 is a hole');
      assert.equal(4 in decoded, true, 'index 4 holds undefined');
      assert.equal(decoded[0], 1);
      assert.equal(decoded[2], 3);
    });
  }

  test('an all-hole array and a trailing hole keep their length', () => {
    const empty = roundTrip(new Array(5), true);
    assert.equal(empty.length, 5);
    assert.equal(Object.keys(empty).length, 0);
     
    const trailing = roundTrip([1, 2, ,], true);
    assert.equal(trailing.length, 3);
    assert.equal(2 in trailing, false);
  });

  test('a very sparse array stores only its elements', () => {
    const value: unknown[] = [];
    value[1_000_000] = 'last';
    const encoded = encodeValue(value);
    assert.ok(encoded.header.byteLength < 100, `header is ${encoded.header.byteLength} bytes`);
    const decoded = roundTrip(value, true);
    assert.equal(decoded.length, 1_000_001);
    assert.deepEqual(Object.keys(decoded), ['1000000']);
  });

  test('a sparse array whose elements before the first hole are objects round-trips', () => {
     
    const value = [{ a: 1 }, , { b: 2 }];
    const decoded = roundTrip(value, true);
    assert.equal(decoded.length, 3);
    assert.deepEqual(decoded[0], { a: 1 });
    assert.equal(1 in decoded, false);
    assert.deepEqual(decoded[2], { b: 2 });
  });

  test('a sparse array whose first element is a typed array stores it once and round-trips', () => {
     
    const value = [new Float64Array([1, 2]), , 3];
    assert.equal(encodeValue(value).buffers.length, 1, 'one out-of-band buffer for one typed array');
    const decoded = roundTrip(value, false);
    assert.deepEqual(decoded[0], new Float64Array([1, 2]));
  });
});

describe('Map, Set, Date, RegExp and boxed primitives', () => {
  for (const copy of COPY_MODES) {
    test(`a Map with object keys keeps entries, order and key identity (copy: ${copy})`, () => {
      const key = { id: 1 };
      const map = new Map<unknown, unknown>([
        [key, 'object key'],
        ['s', 1],
        [2, [2]],
        [NaN, 'nan'],
        [null, undefined],
        [10n, 'bigint'],
      ]);
      const decoded = roundTrip({ map, key }, copy);
      assert.ok(decoded.map instanceof Map);
      assert.deepStrictEqual(decoded.map, map);
      assert.deepEqual([...decoded.map.keys()], [...map.keys()]);
      assert.equal(decoded.map.get(decoded.key), 'object key', 'the decoded key object is the one in the map');
      assert.equal(decoded.map.get(NaN), 'nan');
      assert.equal(decoded.map.get(10n), 'bigint');
    });

    test(`a Set keeps its members and their order (copy: ${copy})`, () => {
      const member = { m: 1 };
      const set = new Set<unknown>(['a', 1, member, 2n, null]);
      const decoded = roundTrip({ set, member }, copy);
      assert.ok(decoded.set instanceof Set);
      assert.deepStrictEqual([...decoded.set], [...set]);
      assert.ok(decoded.set.has(decoded.member));
    });

    test(`Dates keep their time, including an invalid Date (copy: ${copy})`, () => {
      const [date, invalid, early] = roundTrip([new Date(1_700_000_000_123), new Date(Number.NaN), new Date(-8.64e15)], copy);
      assert.ok(date instanceof Date);
      assert.equal(date.getTime(), 1_700_000_000_123);
      assert.ok(invalid instanceof Date);
      assert.ok(Number.isNaN(invalid.getTime()), 'still an invalid date');
      assert.equal(early!.getTime(), -8.64e15);
    });

    test(`RegExps keep source and every flag (copy: ${copy})`, () => {
      for (const regexp of [/a\/b[c-d]+$/gimsuy, /x/d, /\p{L}+/u, new RegExp('')]) {
        const decoded = roundTrip(regexp, copy);
        assert.ok(decoded instanceof RegExp);
        assert.equal(decoded.source, regexp.source);
        assert.equal(decoded.flags, regexp.flags);
      }
    });

    test(`boxed Number, String and Boolean stay boxed with their value (copy: ${copy})`, () => {
       
      const [n, s, b, nan] = roundTrip([new Number(42.5), new String('boxed'), new Boolean(false), new Number(NaN)], copy);
      assert.ok(n instanceof Number && typeof n === 'object');
      assert.equal(n.valueOf(), 42.5);
      assert.ok(s instanceof String);
      assert.equal(s.valueOf(), 'boxed');
      assert.ok(b instanceof Boolean);
      assert.equal(b.valueOf(), false);
      assert.ok(nan instanceof Number && Number.isNaN(nan.valueOf()));
    });
  }

  test('a boxed -0 keeps its sign', () => {
     
    const decoded = roundTrip(new Number(-0), true);
    assert.ok(decoded instanceof Number);
    assert.ok(Object.is(decoded.valueOf(), -0), `decoded as ${Object.is(decoded.valueOf(), -0) ? '-0' : decoded.valueOf()}`);
  });

  test('a boxed BigInt round-trips (structured clone supports it)', () => {
    const boxed = Object(10n) as object;
    const decoded = roundTrip(boxed, true);
    assert.equal(typeof decoded, 'object');
    assert.equal((decoded as { valueOf(): unknown }).valueOf(), 10n);
  });
});

describe('Errors', () => {
  for (const copy of COPY_MODES) {
    test(`an Error keeps name, message and stack (copy: ${copy})`, () => {
      const error = new Error('something broke');
      const decoded = roundTrip(error, copy);
      assert.ok(decoded instanceof Error);
      assert.equal(decoded.name, 'Error');
      assert.equal(decoded.message, 'something broke');
      assert.equal(decoded.stack, error.stack);
      assert.equal('cause' in decoded, false, 'no cause appears out of nowhere');
    });
  }

  test('built-in Error subclasses decode as the same subclass', () => {
    for (const ErrorType of [TypeError, RangeError, SyntaxError, EvalError, ReferenceError, URIError]) {
      const decoded = roundTrip(new ErrorType('msg'), true);
      assert.equal(Object.getPrototypeOf(decoded), ErrorType.prototype, `${ErrorType.name} decoded as ${decoded.constructor.name}`);
      assert.equal(decoded.name, ErrorType.name);
      assert.equal(decoded.message, 'msg');
    }
  });

  test('a custom error class keeps its name and extra fields', () => {
    class ValidationError extends Error {
      override name = 'ValidationError';
      field = 'email';
    }
    const decoded = roundTrip(new ValidationError('invalid'), true);
    assert.ok(decoded instanceof Error);
    assert.equal(decoded.name, 'ValidationError');
    assert.equal(decoded.message, 'invalid');
    assert.equal((decoded as unknown as { field: string }).field, 'email');
    assert.match(String(decoded), /^ValidationError: invalid/);
  });

  test('the cause is preserved: an Error cause, a primitive cause and an explicit undefined cause', () => {
    const inner = new RangeError('inner');
    const decoded = roundTrip(new Error('outer', { cause: inner }), true);
    assert.ok(decoded.cause instanceof RangeError);
    assert.equal(decoded.cause.message, 'inner');
    assert.equal(roundTrip(new Error('x', { cause: 42 }), true).cause, 42);
    const undefinedCause = roundTrip(new Error('x', { cause: undefined }), true);
    assert.ok('cause' in undefinedCause, 'an explicit undefined cause is kept');
    assert.equal(undefinedCause.cause, undefined);
  });

  test('extra own properties such as `code` are preserved; name, stack and cause stay non-enumerable', () => {
    const error = Object.assign(new Error('no file', { cause: 'disk' }), { code: 'ENOENT', details: { path: '/x' } });
    const decoded = roundTrip(error, true) as typeof error;
    assert.equal(decoded.code, 'ENOENT');
    assert.deepEqual(decoded.details, { path: '/x' });
    assert.deepEqual(Object.keys(decoded), ['code', 'details']);
  });

  test('an error that is its own cause decodes as a cycle', () => {
    const error = new Error('loop');
    error.cause = error;
    const decoded = roundTrip(error, true);
    assert.equal(decoded.cause, decoded);
  });

  test('an error with an own enumerable "__proto__" property keeps its prototype', () => {
    const error = new Error('x');
    Object.defineProperty(error, '__proto__', { value: { injected: true }, enumerable: true, writable: true, configurable: true });
    const decoded = roundTrip(error, true);
    assert.equal(Object.getPrototypeOf(decoded), Error.prototype, 'decoded error is still an Error');
    assert.deepEqual(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value, { injected: true });
  });
});

describe('binary data', () => {
  const samples: Record<string, ArrayBufferView> = {
    Int8Array: Int8Array.of(-128, 0, 127),
    Uint8Array: Uint8Array.of(0, 1, 255),
    Uint8ClampedArray: Uint8ClampedArray.of(0, 128, 255),
    Int16Array: Int16Array.of(-32768, 1, 32767),
    Uint16Array: Uint16Array.of(0, 65535),
    Int32Array: Int32Array.of(-(2 ** 31), 2 ** 31 - 1),
    Uint32Array: Uint32Array.of(0, 2 ** 32 - 1),
    Float32Array: Float32Array.of(1.5, -0, NaN, Infinity, 3.4e38),
    Float64Array: Float64Array.of(Math.PI, -0, NaN, -Infinity, Number.MIN_VALUE),
    BigInt64Array: BigInt64Array.of(-(2n ** 63n), 0n, 2n ** 63n - 1n),
    BigUint64Array: BigUint64Array.of(0n, 2n ** 64n - 1n),
  };

  test('the samples cover every TypedArray kind Shoal stores', () => {
    assert.deepEqual(Object.keys(samples).sort(), Object.keys(TYPED_ARRAY_CONSTRUCTORS).sort());
  });

  for (const copy of COPY_MODES) {
    test(`every TypedArray kind round-trips with its class and exact elements (copy: ${copy})`, () => {
      for (const [kind, sample] of Object.entries(samples)) {
        const decoded = roundTrip(sample, copy);
        assert.equal(decoded.constructor.name, kind);
        assert.deepStrictEqual(decoded, sample, kind);
        assert.ok(Object.is((decoded as Float64Array)[1], (sample as Float64Array)[1]), `${kind}: -0 kept where present`);
      }
    });

    test(`a DataView round-trips as a DataView over the same bytes (copy: ${copy})`, () => {
      const view = new DataView(new ArrayBuffer(12));
      view.setFloat64(0, -1.25, true);
      view.setUint32(8, 0xdeadbeef, false);
      const decoded = roundTrip(view, copy);
      assert.ok(decoded instanceof DataView);
      assert.equal(decoded.byteLength, 12);
      assert.equal(decoded.getFloat64(0, true), -1.25);
      assert.equal(decoded.getUint32(8, false), 0xdeadbeef);
    });

    test(`a subarray with a non-zero byteOffset stores and decodes only its own bytes (copy: ${copy})`, () => {
      const whole = Float64Array.from({ length: 100 }, (_, i) => i);
      const view = whole.subarray(10, 13);
      assert.equal(view.byteOffset, 80);
      const encoded = encodeValue(view);
      assert.equal(encoded.buffers.length, 1);
      assert.equal(encoded.buffers[0]!.byteLength, 24, 'only the 3 viewed elements are stored');
      assert.equal(encoded.layout.bufferLengths[0], 24);
      const decoded = roundTrip(view, copy);
      assert.deepEqual([...decoded], [10, 11, 12]);
      assert.equal(decoded.length, 3);
    });

    test(`a DataView over part of a buffer stores only its bytes (copy: ${copy})`, () => {
      const bytes = Uint8Array.from({ length: 32 }, (_, i) => i);
      const view = new DataView(bytes.buffer, 5, 7);
      assert.equal(encodeValue(view).buffers[0]!.byteLength, 7);
      const decoded = roundTrip(view, copy);
      assert.equal(decoded.byteLength, 7);
      assert.deepEqual([...new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength)], [5, 6, 7, 8, 9, 10, 11]);
    });

    test(`a small Buffer sharing Node's pool slab decodes as a Buffer with only its bytes (copy: ${copy})`, () => {
      const buffer = Buffer.from('abc');
      assert.ok(buffer.buffer.byteLength > buffer.byteLength, 'precondition: the Buffer lives in a larger pool slab');
      assert.equal(encodeValue(buffer).buffers[0]!.byteLength, 3, 'only 3 bytes stored, not the pool slab');
      const decoded = roundTrip(buffer, copy);
      assert.ok(Buffer.isBuffer(decoded), 'decodes as a Buffer');
      assert.equal(decoded.toString(), 'abc');
      assert.equal(decoded.byteLength, 3);
    });

    test(`an ArrayBuffer round-trips with its bytes (copy: ${copy})`, () => {
      const source = Uint8Array.of(1, 2, 3, 4, 5).buffer;
      const decoded = roundTrip(source, copy);
      assert.ok(decoded instanceof ArrayBuffer);
      assert.deepEqual([...new Uint8Array(decoded)], [1, 2, 3, 4, 5]);
    });

    test(`zero-length views and ArrayBuffers round-trip among non-empty ones (copy: ${copy})`, () => {
      const value = {
        a: new Float64Array(0),
        b: new Uint8Array([9]),
        c: new ArrayBuffer(0),
        d: new BigInt64Array(0),
        e: new DataView(new ArrayBuffer(0)),
        f: Buffer.alloc(0),
      };
      const decoded = roundTrip(value, copy);
      assert.deepStrictEqual(decoded, value);
      assert.ok(Buffer.isBuffer(decoded.f));
    });
  }

  test('a typed array subclass is stored as its base kind', () => {
    class Vector extends Float64Array {}
    const decoded = roundTrip(Vector.of(1, 2), true);
    assert.equal(decoded.constructor, Float64Array);
    assert.deepEqual([...decoded], [1, 2]);
  });

  test('a large Float64Array (8 MiB) round-trips element for element', () => {
    const value = Float64Array.from({ length: 1 << 20 }, (_, i) => i * 0.5);
    const decoded = roundTrip(value, false);
    assert.equal(decoded.length, value.length);
    assert.equal(decoded[(1 << 20) - 1], ((1 << 20) - 1) * 0.5);
    assert.ok(Buffer.from(decoded.buffer, decoded.byteOffset, decoded.byteLength).equals(Buffer.from(value.buffer)));
  });
});

describe('ObjectRefs nested in values', () => {
  const refA = new ObjectRef(ID, OWNER);
  const refB = new ObjectRef('z', 'o-2_x');

  for (const copy of COPY_MODES) {
    test(`nested refs decode as ObjectRefs with the same fields (copy: ${copy})`, () => {
      const decoded = roundTrip({ a: refA, list: [refB], map: new Map([['r', refA]]) }, copy);
      assert.ok(decoded.a instanceof ObjectRef);
      assert.deepStrictEqual(decoded.a, refA);
      assert.deepEqual(
        { id: decoded.list[0]!.id, owner: decoded.list[0]!.owner },
        { id: 'z', owner: 'o-2_x' },
      );
      assert.equal(decoded.map.get('r'), decoded.a, 'the same ref twice decodes to one instance');
    });
  }

  test('encodeValue lists every nested ref once, in encounter order', () => {
    const encoded = encodeValue({ first: refB, again: refB, second: [refA] });
    assert.equal(encoded.refs.length, 2);
    assert.equal(encoded.refs[0], refB);
    assert.equal(encoded.refs[1], refA);
    assert.deepEqual(encodeValue({ plain: 1 }).refs, []);
  });

  test('a value that is only a ref round-trips and lists it', () => {
    assert.deepEqual(encodeValue(refA).refs, [refA]);
    assert.deepStrictEqual(roundTrip(refA, true), refA);
  });
});

// ---------------------------------------------------------------------------------------------
// Zero-copy and alignment
// ---------------------------------------------------------------------------------------------

describe('zero-copy decoding', () => {
  test('encodeValue does not copy binaries: its buffers view the caller memory', () => {
    const array = new Float64Array([1, 2, 3]);
    const encoded = encodeValue({ array });
    assert.equal(encoded.buffers[0]!.buffer, array.buffer);
  });

  test('writeInline copies: later writes to the source do not change the written bytes', () => {
    const array = new Float64Array([1, 2, 3]);
    const bytes = writeInline(encodeValue(array));
    array[0] = 99;
    assert.equal((decodeValue(bytes, { copy: true }) as Float64Array)[0], 1);
  });

  test('with copy: false a Float64Array is a view into bytes.buffer and writes reach the bytes', () => {
    const encoded = encodeValue({ f: new Float64Array([1, 2, 3]) });
    const bytes = writeInline(encoded);
    const decoded = decodeValue(bytes, { copy: false }) as { f: Float64Array };
    assert.equal(decoded.f.buffer, bytes.buffer, 'the very ArrayBuffer passed in');
    assert.equal(decoded.f.byteOffset, bytes.byteOffset + encoded.layout.bufferOffsets[0]!);
    decoded.f[1] = -7;
    assert.equal(new Float64Array(bytes.buffer, encoded.layout.bufferOffsets[0]!, 3)[1], -7, 'the write is visible in bytes');
    assert.equal((decodeValue(bytes, { copy: false }) as { f: Float64Array }).f[1], -7, 'and in the next decode');
  });

  test('with copy: false every view kind and Buffer view bytes.buffer', () => {
    const value = { ...Object.fromEntries(Object.entries(TYPED_ARRAY_CONSTRUCTORS).map(([k, C]) => [k, new C(4)])), dv: new DataView(new ArrayBuffer(4)), buf: Buffer.from('xyz') };
    const bytes = writeInline(encodeValue(value));
    const decoded = decodeValue(bytes, { copy: false }) as Record<string, ArrayBufferView>;
    for (const [key, view] of Object.entries(decoded)) assert.equal(view.buffer, bytes.buffer, `${key} is zero-copy`);
  });

  test('with copy: true decoded views own their memory and writes do not reach the bytes', () => {
    const bytes = writeInline(encodeValue({ f: new Float64Array([1, 2, 3]), b: Buffer.from('hey') }));
    const snapshot = bytes.slice();
    const decoded = decodeValue(bytes, { copy: true }) as { f: Float64Array; b: Buffer };
    assert.notEqual(decoded.f.buffer, bytes.buffer);
    assert.notEqual(decoded.b.buffer, bytes.buffer);
    decoded.f[0] = 42;
    decoded.b[0] = 0;
    assert.deepEqual(bytes, snapshot, 'bytes unchanged');
    assert.notEqual(decoded.f.buffer, decoded.b.buffer, 'two decoded binaries do not share memory either');
  });

  test('with copy: false a decoded Buffer views the bytes in place', () => {
    const bytes = writeInline(encodeValue(Buffer.from('abc')));
    const decoded = decodeValue(bytes, { copy: false }) as Buffer;
    assert.ok(Buffer.isBuffer(decoded));
    assert.equal(decoded.buffer, bytes.buffer);
    decoded.write('X');
    assert.equal((decodeValue(bytes, { copy: true }) as Buffer).toString(), 'Xbc');
  });

  test('ArrayBuffers are copied unless sliceArrayBuffer is given, which then makes them in place', () => {
    const source = Uint8Array.of(5, 6, 7).buffer;
    const encoded = encodeValue({ source });
    const bytes = writeInline(encoded);

    const copied = decodeValue(bytes, { copy: false }) as { source: ArrayBuffer };
    assert.notEqual(copied.source, bytes.buffer);
    assert.deepEqual([...new Uint8Array(copied.source)], [5, 6, 7]);

    const calls: [ArrayBuffer, number, number][] = [];
    const made = new ArrayBuffer(3);
    const sliced = decodeValue(bytes, {
      copy: false,
      sliceArrayBuffer: (buffer, offset, length) => {
        calls.push([buffer, offset, length]);
        return made;
      },
    }) as { source: ArrayBuffer };
    assert.equal(sliced.source, made, 'the value sliceArrayBuffer returned is used');
    assert.equal(calls.length, 1);
    assert.equal(calls[0]![0], bytes.buffer);
    assert.equal(calls[0]![1], encoded.layout.bufferOffsets[0]);
    assert.equal(calls[0]![2], 3);

    let called = false;
    const forcedCopy = decodeValue(bytes, {
      copy: true,
      sliceArrayBuffer: () => {
        called = true;
        return new ArrayBuffer(0);
      },
    }) as { source: ArrayBuffer };
    assert.equal(called, false, 'copy: true never slices in place');
    assert.deepEqual([...new Uint8Array(forcedCopy.source)], [5, 6, 7]);
  });

  test('sliceArrayBuffer receives offsets relative to bytes.buffer when bytes starts inside it', () => {
    const encoded = encodeValue(Uint8Array.of(1, 2).buffer);
    const bytes = shifted(writeInline(encoded), 128);
    let seenOffset = -1;
    decodeValue(bytes, {
      copy: false,
      sliceArrayBuffer: (buffer, offset, length) => {
        seenOffset = offset;
        return buffer.slice(offset, offset + length);
      },
    });
    assert.equal(seenOffset, 128 + encoded.layout.bufferOffsets[0]!);
  });
});

describe('alignment', () => {
  const oddSizes = () => ({
    a: new Uint8Array(1),
    b: new Uint8Array(3),
    c: new Float64Array(7),
    d: new Uint8Array(0),
    e: new Int16Array(33),
    f: new BigInt64Array(5),
    g: new Float32Array(17),
    h: new DataView(new ArrayBuffer(65)),
    i: Buffer.from('odd'),
  });

  test('every out-of-band buffer starts on a 64-byte boundary in the layout', () => {
    const encoded = encodeValue(oddSizes());
    assert.equal(encoded.layout.bufferOffsets.length, 9);
    for (const offset of encoded.layout.bufferOffsets) assert.equal(offset % ALIGNMENT, 0, `offset ${offset}`);
    assert.deepEqual(
      encoded.layout.bufferLengths,
      encoded.buffers.map((b) => b.byteLength),
    );
  });

  test('decoded views start 64-byte aligned when the bytes start aligned', () => {
    for (const shift of [0, 64, 4096]) {
      const bytes = shift === 0 ? writeInline(encodeValue(oddSizes())) : shifted(writeInline(encodeValue(oddSizes())), shift);
      const decoded = decodeValue(bytes, { copy: false }) as Record<string, ArrayBufferView>;
      for (const [key, view] of Object.entries(decoded)) {
        assert.equal(view.buffer, bytes.buffer, `${key} viewed in place`);
        assert.equal(view.byteOffset % ALIGNMENT, 0, `${key} at byteOffset ${view.byteOffset} (bytes shifted by ${shift})`);
      }
    }
  });

  for (const copy of COPY_MODES) {
    test(`misaligned input bytes (byteOffset 3) still decode every kind correctly (copy: ${copy})`, () => {
      const value = {
        f64: Float64Array.of(1.5, -2.25),
        big: BigInt64Array.of(-5n, 2n ** 62n),
        i16: Int16Array.of(-3, 4),
        f32: Float32Array.of(0.5),
        u8: Uint8Array.of(9, 8, 7),
        dv: new DataView(Uint8Array.of(1, 2, 3, 4).buffer),
        buf: Buffer.from('misaligned'),
        ab: Uint8Array.of(4, 5).buffer,
      };
      const bytes = shifted(writeInline(encodeValue(value)), 3);
      assert.equal(bytes.byteOffset, 3);
      const decoded = decodeValue(bytes, { copy });
      assert.deepStrictEqual(decoded, value);
    });
  }

  test('misaligned input: wide elements are copied, byte-wide views stay zero-copy', () => {
    const bytes = shifted(writeInline(encodeValue({ f64: Float64Array.of(1, 2), u8: Uint8Array.of(1, 2), dv: new DataView(new ArrayBuffer(2)) })), 3);
    const decoded = decodeValue(bytes, { copy: false }) as { f64: Float64Array; u8: Uint8Array; dv: DataView };
    assert.equal(decoded.f64.byteOffset % 8, 0);
    assert.deepEqual([...decoded.f64], [1, 2]);
    assert.equal(decoded.u8.buffer, bytes.buffer, 'a Uint8Array needs no alignment, so it is not copied');
    assert.equal(decoded.dv.buffer, bytes.buffer);
  });
});

// ---------------------------------------------------------------------------------------------
// Shared references and cycles
// ---------------------------------------------------------------------------------------------

describe('shared references and cycles', () => {
  for (const copy of COPY_MODES) {
    test(`the same object referenced twice decodes to one object (copy: ${copy})`, () => {
      const shared = { n: 1 };
      const decoded = roundTrip({ a: shared, b: shared, list: [shared] }, copy);
      assert.equal(decoded.a, decoded.b);
      assert.equal(decoded.list[0], decoded.a);
      decoded.a.n = 2;
      assert.equal(decoded.b.n, 2);
    });

    test(`a self-referencing object decodes as a cycle (copy: ${copy})`, () => {
      const value: Record<string, unknown> = { name: 'self' };
      value.self = value;
      const decoded = roundTrip(value, copy);
      assert.equal(decoded.self, decoded);
      assert.equal(decoded.name, 'self');
    });

    test(`the same Float64Array twice is stored once and decodes to the same view (copy: ${copy})`, () => {
      const array = new Float64Array([1, 2, 3]);
      const encoded = encodeValue({ a: array, b: array });
      assert.equal(encoded.buffers.length, 1, 'one out-of-band buffer');
      const decoded = roundTrip({ a: array, b: array }, copy);
      assert.equal(decoded.a, decoded.b);
      assert.deepEqual([...decoded.a], [1, 2, 3]);
    });
  }

  test('a cycle through a Map value', () => {
    const map = new Map<string, unknown>();
    const holder = { map };
    map.set('holder', holder).set('self', map);
    const decoded = roundTrip(holder, true);
    assert.equal(decoded.map.get('holder'), decoded);
    assert.equal(decoded.map.get('self'), decoded.map);
  });

  test('a cycle through a Map key', () => {
    const map = new Map<unknown, unknown>();
    map.set(map, 'me');
    const decoded = roundTrip(map, true);
    assert.equal(decoded.get(decoded), 'me');
  });

  test('a cycle through an array', () => {
    const array: unknown[] = [1];
    array.push(array, { back: array });
    const decoded = roundTrip(array, true);
    assert.equal(decoded[1], decoded);
    assert.equal((decoded[2] as { back: unknown }).back, decoded);
  });

  test('a cycle through a Set and through a sparse array', () => {
    const set = new Set<unknown>();
    set.add(set);
    const decodedSet = roundTrip(set, true);
    assert.ok(decodedSet.has(decodedSet));

    const sparse: unknown[] = [];
    sparse[3] = sparse;
    const decodedSparse = roundTrip(sparse, true);
    assert.equal(decodedSparse[3], decodedSparse);
    assert.equal(0 in decodedSparse, false);
  });

  test('shared Dates, RegExps, Maps, boxed values, ArrayBuffers, errors and refs keep their identity', () => {
    const date = new Date(1);
    const regexp = /x/g;
    const map = new Map([[1, 2]]);
     
    const boxed = new String('s');
    const buffer = new ArrayBuffer(4);
    const error = new Error('e');
    const ref = new ObjectRef(ID, OWNER);
    const value = [date, regexp, map, boxed, buffer, error, ref];
    const decoded = roundTrip({ first: value, second: [...value] }, true);
    for (let i = 0; i < value.length; i++) {
      assert.equal(decoded.second[i], decoded.first[i], `element ${i} (${value[i]!.constructor.name}) is shared`);
    }
    assert.equal(encodeValue({ first: value, second: [...value] }).buffers.length, 1, 'the ArrayBuffer is stored once');
  });

  test('a shared object seen first deep inside and again at the top decodes with correct identities', () => {
    const leaf = { leaf: true };
    const value = { deep: { deeper: [new Map([['leaf', leaf]])] }, again: leaf, other: { leaf: true } };
    const decoded = roundTrip(value, true);
    assert.equal(decoded.deep.deeper[0]!.get('leaf'), decoded.again);
    assert.notEqual(decoded.other, decoded.again, 'an equal but distinct object stays distinct');
  });
});

// ---------------------------------------------------------------------------------------------
// Unsupported values
// ---------------------------------------------------------------------------------------------

describe('unsupported values are rejected with the path in the message', () => {
  class Socket {
    fd = 3;
  }

  test('a class instance names its class and path', () => {
    assertRejected({ host: 'x', conn: new Socket() }, 'value.conn: Socket cannot be stored', /plain object/);
  });

  test('a function at value.f', () => {
    assertRejected({ f: function f() {} }, 'value.f: function f cannot be stored', /remote\(fn\)/);
    assertRejected({ g: [(() => () => 1)()] }, 'value.g[0]: a function cannot be stored');
  });

  test('a symbol inside an array names its index', () => {
    assertRejected([1, 2, Symbol('s')], 'value[2]: a symbol cannot be stored');
  });

  test('a Promise inside a Map value names the key', () => {
    assertRejected(new Map([['k', Promise.resolve(1)]]), 'value.get("k"): Promise cannot be stored', /Await the promise/);
  });

  test('an unsupported Map key and Set member name their position', () => {
    assertRejected({ m: new Map([[new Socket(), 1]]) }, 'value.m.keys()[0]: Socket cannot be stored');
    assertRejected({ s: new Set([1, new Socket()]) }, 'value.s.values()[1]: Socket cannot be stored');
    assertRejected(new Map([[{ id: 1 }, () => 1]]), 'value.get(<Object>): a function cannot be stored');
  });

  test('WeakMap, WeakSet and WeakRef are refused', () => {
    assertRejected({ w: new WeakMap() }, 'value.w: WeakMap cannot be stored');
    assertRejected({ w: new WeakSet() }, 'value.w: WeakSet cannot be stored');
    assertRejected({ w: new WeakRef({}) }, 'value.w: WeakRef cannot be stored');
  });

  test('a SharedArrayBuffer is refused with advice', () => {
    assertRejected({ sab: new SharedArrayBuffer(8) }, 'value.sab: SharedArrayBuffer cannot be stored', /Copy it into an ArrayBuffer/);
  });

  test('a custom root name starts the path', () => {
    assertRejected({ conn: new Socket() }, 'args[0].conn: Socket cannot be stored', undefined, 'args[0]');
    assertRejected(new Socket(), 'args[0]: Socket cannot be stored', undefined, 'args[0]');
  });

  test('keys that are not identifiers are quoted in the path; error fields are named', () => {
    assertRejected({ 'my key': { 'a-b': [Symbol('x')] } }, 'value["my key"]["a-b"][0]: a symbol cannot be stored');
    assertRejected(new Error('e', { cause: new Socket() }), 'value.cause: Socket cannot be stored');
    assertRejected(Object.assign(new Error('e'), { socket: new Socket() }), 'value.socket: Socket cannot be stored');
  });

  test('a rejected value does not affect the next encode', () => {
    assert.throws(() => encodeValue({ bad: new Socket() }));
    assert.deepEqual(roundTrip({ good: [1] }, true), { good: [1] });
  });

  test(`a value nested exactly MAX_DEPTH (${MAX_DEPTH}) objects deep is accepted; one more level is refused`, () => {
    let value: Record<string, unknown> = {};
    for (let i = 1; i < MAX_DEPTH; i++) value = { c: value };
    const decoded = roundTrip(value, true);
    let depth = 1;
    for (let cursor = decoded; cursor.c !== undefined; cursor = cursor.c as Record<string, unknown>) depth += 1;
    assert.equal(depth, MAX_DEPTH);
    assert.throws(() => encodeValue({ c: value }), (error: unknown) => error instanceof TypeError && /nested/.test(error.message));
  });

  test('a value nested MAX_DEPTH + 10 levels deep is refused with a TypeError saying it is nested too deeply', () => {
    for (const wrap of [
      (inner: unknown) => ({ c: inner }),
      (inner: unknown) => [inner],
      (inner: unknown) => new Map([['k', inner]]),
      (inner: unknown) => new Set([inner]),
      (inner: unknown) => new Error('e', { cause: inner }),
    ]) {
      let value: unknown = 0;
      for (let i = 0; i < MAX_DEPTH + 10; i++) value = wrap(value);
      assert.throws(
        () => encodeValue(value),
        (error: unknown) => {
          assert.ok(error instanceof TypeError, `expected TypeError, got ${String(error)}`);
          assert.match(error.message, /^value\S*: nested (more than \d+ levels deep|too deeply)/);
          return true;
        },
      );
    }
  });

  test('Maps, Sets and error causes nested fewer than MAX_DEPTH levels never overflow the stack with a RangeError', () => {
    // Run in a fresh process: how deep recursion gets before overflowing depends on whether the
    // code is optimized yet, and a fresh process is the worst (and most deterministic) case.
    const serialize = new URL('./serialize/index.ts', import.meta.url).href;
    const script = `
      const { encodeValue, writeInline, decodeValue, MAX_DEPTH } = await import(${JSON.stringify(serialize)});
      const results = [];
      for (const kind of ['map', 'set', 'error']) {
        let value = 0;
        for (let i = 0; i < MAX_DEPTH - 1; i++) {
          value = kind === 'map' ? new Map([['k', value]]) : kind === 'set' ? new Set([value]) : new Error('e', { cause: value });
        }
        try {
          decodeValue(writeInline(encodeValue(value)), { copy: true });
          results.push({ kind, outcome: 'ok' });
        } catch (error) {
          results.push({ kind, outcome: error.constructor.name, message: error.message.slice(0, 120) });
        }
      }
      process.stdout.write(JSON.stringify(results));
    `;
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const results = JSON.parse(child.stdout) as { kind: string; outcome: string; message?: string }[];
    for (const result of results) {
      assert.ok(
        result.outcome === 'ok' || (result.outcome === 'TypeError' && /nested/.test(result.message ?? '')),
        `${result.kind} nested ${MAX_DEPTH - 1} deep: ${result.outcome}: ${result.message}`,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Corrupt input
// ---------------------------------------------------------------------------------------------

describe('corrupt input throws ObjectCorruptError, never crashes or hangs', () => {
  const rich = () => ({
    n: [1, -0, NaN, 2n ** 70n, 'text'],
    m: new Map<unknown, unknown>([[{ k: 1 }, new Set([1, 'a'])]]),
    d: new Date(5),
    r: /x+/gi,
    e: Object.assign(new TypeError('bad', { cause: 'c' }), { code: 'E' }),
    f: new Float64Array([1, 2, 3]),
    u: new Uint8Array([1, 2, 3, 4, 5]).subarray(1),
    b: Buffer.from('abc'),
    ab: new ArrayBuffer(9),
     
    sp: [, 1, , 2],
    pk: JSON.parse('{"__proto__": 1}') as unknown,
     
    bx: new String('boxed'),
    ref: new ObjectRef(ID, OWNER),
    dv: new DataView(new ArrayBuffer(4)),
  });

  test('the rich sample itself round-trips (so the fuzz below mutates a valid object)', () => {
    assert.deepStrictEqual(roundTrip(rich(), true), rich());
  });

  test('random bytes of many lengths', { timeout: 10_000 }, () => {
    const random = prng(1);
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256));
      for (const copy of COPY_MODES) assertCorrupt(() => decodeValue(bytes, { copy }));
    }
  });

  test('a valid prefix followed by a random header', { timeout: 10_000 }, () => {
    const random = prng(2);
    const unexpected = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const header = Uint8Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256));
      const bytes = craftObject(header, [8, 16]);
      for (const copy of COPY_MODES) {
        const problem = unexpectedDecodeError(bytes, { copy });
        if (problem) unexpected.add(problem);
      }
    }
    assert.deepEqual([...unexpected], []);
  });

  test('a valid object with random bytes of its header overwritten', { timeout: 30_000 }, () => {
    const encoded = encodeValue(rich());
    const bytes = writeInline(encoded);
    const random = prng(3);
    const unexpected = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const mutated = bytes.slice();
      const flips = 1 + Math.floor(random() * 3);
      for (let j = 0; j < flips; j++) {
        mutated[encoded.layout.headerOffset + Math.floor(random() * encoded.layout.headerLength)] = Math.floor(random() * 256);
      }
      for (const copy of COPY_MODES) {
        const problem = unexpectedDecodeError(mutated, { copy });
        if (problem) unexpected.set(problem, (unexpected.get(problem) ?? 0) + 1);
      }
    }
    assert.deepEqual(Object.fromEntries(unexpected), {}, 'errors other than ObjectCorruptError (kind and source: count)');
  });

  test('a truncated object', () => {
    const bytes = writeInline(encodeValue(rich()));
    for (const length of [0, 1, 10, 63, 64, 100, bytes.byteLength - 1]) {
      assertCorrupt(() => decodeValue(bytes.subarray(0, length), { copy: false }));
    }
  });

  test('an object whose header was cut short (sizes patched to match)', () => {
    const encoded = encodeValue({ a: 'some text', b: [1, 2, 3] });
    const header = encoded.header.subarray(0, encoded.header.byteLength - 3);
    assertCorrupt(() => decodeValue(craftObject(header), { copy: true }), /header does not decode/);
  });

  test('a header with trailing bytes after the value', () => {
    assertCorrupt(() => decodeValue(craftObject(Uint8Array.of(0x01, 0x02)), { copy: true }), /header does not decode/);
  });

  test('an empty header', () => {
    assertCorrupt(() => decodeValue(craftObject(new Uint8Array(0)), { copy: true }), /header does not decode/);
  });

  test('a wrong magic number or layout version', () => {
    const bytes = writeInline(encodeValue({ a: 1 }));
    const badMagic = bytes.slice();
    badMagic[1] = badMagic[1]! ^ 0x20;
    assertCorrupt(() => decodeValue(badMagic, { copy: true }), /bad magic number/);
    const badVersion = bytes.slice();
    new DataView(badVersion.buffer).setUint16(4, 99, true);
    assertCorrupt(() => decodeValue(badVersion, { copy: true }), /layout version 99/);
  });

  test('the where option names the object in the error', () => {
    assert.throws(
      () => decodeValue(new Uint8Array(10), { copy: true, where: 'object abc123' }),
      (error: unknown) => error instanceof ObjectCorruptError && error.message.startsWith('object abc123 is not a valid Shoal object'),
    );
  });

  test('a buffer table entry pointing outside the object', () => {
    const encoded = encodeValue(new Float64Array(4));
    const bytes = writeInline(encoded);
    const outside = bytes.slice();
    new DataView(outside.buffer).setUint32(64, encoded.layout.totalSize + 64, true);
    assertCorrupt(() => decodeValue(outside, { copy: false }), /buffer 0 lies outside/);
    const tooLong = bytes.slice();
    new DataView(tooLong.buffer).setUint32(64 + 8, 33, true);
    assertCorrupt(() => decodeValue(tooLong, { copy: false }), /buffer 0 lies outside/);
  });

  test('a view whose buffer length does not match its element count', () => {
    const encoded = encodeValue(new Float64Array(4));
    const bytes = writeInline(encoded);
    new DataView(bytes.buffer).setUint32(64 + 8, 31, true); // 31 bytes for 4 doubles
    assertCorrupt(() => decodeValue(bytes, { copy: false }), /length does not match/);
  });

  describe('hand-made headers with malformed nodes', () => {
    const cases: [name: string, header: () => Uint8Array, bufferLengths?: number[]][] = [
      ['an unknown node tag', () => node(99, 0)],
      ['a node that is not a [tag, data] pair', () => concat(NODE_PREFIX, pack('nonsense'))],
      ['a view of a buffer that does not exist', () => node(TAG.VIEW, [8, 5, 1]), [8]],
      ['a view of an unknown kind', () => node(TAG.VIEW, [42, 0, 8]), [8]],
      ['a view whose kind is the string "length"', () => node(TAG.VIEW, ['length', 0, 8]), [8]],
      ['a view with a negative buffer index', () => node(TAG.VIEW, [1, -1, 0]), [8]],
      ['an ArrayBuffer with a negative buffer index', () => node(TAG.ARRAY_BUFFER, -1), [8]],
      ['an ArrayBuffer with a fractional buffer index', () => node(TAG.ARRAY_BUFFER, 0.5), [8]],
      ['an ArrayBuffer with a missing buffer index', () => node(TAG.ARRAY_BUFFER, 3), [8]],
      ['a back-reference to an object not seen yet', () => fixArray(node(TAG.BACKREF, 5))],
      ['a negative back-reference', () => fixArray(node(TAG.BACKREF, -1))],
      ['a BigInt that is not a number', () => node(TAG.BIGINT, 'xyz')],
      ['a RegExp with an invalid pattern', () => node(TAG.REGEXP, ['(', ''])],
      ['a RegExp with invalid flags', () => node(TAG.REGEXP, ['a', 'zz'])],
      ['a sparse array longer than any array can be', () => node(TAG.SPARSE, [2 ** 40])],
      ['a sparse array with an index beyond its length', () => node(TAG.SPARSE, [2, 5, 'x'])],
      ['a Map with an odd number of entries', () => node(TAG.MAP, [1, 2, 3])],
      ['an Error with a non-string message', () => node(TAG.ERROR, ['Error', 5, null, false, null, []])],
      ['an ObjectRef with an id that is not file-name safe', () => node(TAG.REF, ['../../etc/passwd', OWNER, 1, false])],
      ['an ObjectRef with a negative size', () => node(TAG.REF, [ID, OWNER, -1, false])],
    ];
    for (const [name, header, bufferLengths] of cases) {
      test(name, () => {
        const bytes = craftObject(header(), bufferLengths);
        for (const copy of COPY_MODES) assertCorrupt(() => decodeValue(bytes, { copy }));
      });
    }
  });

  test('a header nested thousands of levels deep throws ObjectCorruptError, not a stack overflow', { timeout: 30_000 }, () => {
    const unexpected = new Set<string>();
    // Step finely: where msgpackr's own recursion gives out (reported as corrupt) and where the
    // reviver's does depends on how optimized each is, so probe every depth band.
    for (let depth = 500; depth <= 24_000; depth += 250) {
      for (const unit of [
        [0x81, 0xa1, 0x63], // { c: ... }
        [0x91], // [ ... ]
        [...NODE_PREFIX, 0x92, 0x04, 0x91], // Set { ... }
        [...NODE_PREFIX, 0x92, 0x03, 0x92, 0xc0], // Map { null => ... }
      ]) {
        const header = new Uint8Array(depth * unit.length + 1);
        for (let i = 0; i < depth; i++) header.set(unit, i * unit.length);
        header[depth * unit.length] = 0xc0;
        const problem = unexpectedDecodeError(craftObject(header), { copy: true });
        if (problem) unexpected.add(`${problem} (unit ${unit.length} bytes, depth ${depth})`);
      }
    }
    assert.deepEqual([...unexpected], []);
  });
});

// ---------------------------------------------------------------------------------------------
// Writing helpers
// ---------------------------------------------------------------------------------------------

describe('writeFrontBytes and encodeViewShell', () => {
  test('writeFrontBytes plus the buffers at their offsets equals writeInline', () => {
    const encoded = encodeValue({ a: new Uint8Array([1, 2, 3]), b: new Float64Array([4]) });
    const assembled = new Uint8Array(encoded.layout.totalSize);
    assembled.set(writeFrontBytes(encoded));
    encoded.buffers.forEach((buffer, i) => assembled.set(buffer, encoded.layout.bufferOffsets[i]!));
    assert.deepEqual(assembled, writeInline(encoded));
  });

  test('writeInline produces exactly layout.totalSize bytes', () => {
    for (const value of [1, 'x', { a: new Uint8Array(100) }, [new ArrayBuffer(0)]]) {
      const encoded = encodeValue(value);
      assert.equal(writeInline(encoded).byteLength, encoded.layout.totalSize);
    }
  });

  test('encodeViewShell makes an object that decodes as a TypedArray whose bytes are written in place', () => {
    const { header, layout } = encodeViewShell('Float64Array', 10);
    assert.equal(layout.bufferLengths[0], 80);
    const bytes = new Uint8Array(layout.totalSize);
    writeFront(bytes, layout as Layout, header);
    new Float64Array(bytes.buffer, layout.bufferOffsets[0]!, 10).fill(2.5);
    const decoded = decodeValue(bytes, { copy: false });
    assert.ok(decoded instanceof Float64Array);
    assert.deepEqual([...decoded], new Array(10).fill(2.5));
  });

  test('encodeViewShell refuses a name that is not a TypedArray', () => {
    for (const kind of ['DataView', 'Buffer', 'Array', 'toString']) {
      assert.throws(() => encodeViewShell(kind, 1), TypeError, kind);
    }
  });
});

describe("Shoal's errors keep their class", () => {
  test('an error whose code names a registered class of its name comes back as that class, with its fields', () => {
    const died = new ActorDiedError('Counter', { kind: 'exited', exitCode: null, signal: 'SIGKILL' }, 1);
    const back = roundTrip(died, true);
    assert.ok(back instanceof ActorDiedError);
    assert.ok(back instanceof ShoalError);
    assert.equal(back.message, died.message);
    assert.equal(back.code, 'ERR_ACTOR_DIED');
    assert.deepEqual(back.reason, died.reason);
    assert.equal(back.stack, died.stack);
    const failed = roundTrip(new TaskError('parse', new RangeError('too big')), true);
    assert.ok(failed instanceof TaskError);
    assert.ok(failed.cause instanceof RangeError);
    assert.equal(failed.remoteName, 'RangeError');
  });

  test('a code that does not match the name (or no class) leaves a plain error: no class from bytes alone', () => {
    const impostor = Object.assign(new Error('not really'), { code: 'ERR_TASK_FAILED' });
    const back = roundTrip(impostor, true);
    assert.ok(!(back instanceof TaskError));
    assert.equal(back.name, 'Error');
    const unknown = roundTrip(Object.assign(new TypeError('x'), { code: 'ERR_NOT_A_CODE' }), true);
    assert.ok(unknown instanceof TypeError);
  });
});
