// Shared by the fuzz tests (not built into dist: see tsconfig.build.json). Messages are generated
// from the boundary's own schemas, so every message type is covered and a field added to a schema
// is fuzzed without a test change; `hostile` then puts wrong values where bugs hide (wrong types,
// NaN, negatives, huge numbers, long strings, ../ ids) into a random place of a valid message.
import { Kind, OptionalKind, type TSchema } from '@sinclair/typebox';
import fc from 'fast-check';
import type { Messages } from './schema.js';

/**
 * The run's seed, logged, so a failure reproduces: `SHOAL_FUZZ_SEED=<seed> node scripts/run-tests.mjs fuzz`.
 * A new one each local run (so the suite keeps exploring); a fixed one under CI, so a landing's
 * result is the same on every run of it.
 */
export const FUZZ_SEED = process.env.SHOAL_FUZZ_SEED
  ? Number(process.env.SHOAL_FUZZ_SEED)
  : process.env.CI === 'true'
    ? 20261201
    : Date.now() % 2 ** 31;

/** fast-check's parameters for a property of `numRuns` runs, with the run's seed. */
export function fuzzParameters(numRuns: number): fc.Parameters<unknown> {
  return { numRuns, seed: FUZZ_SEED, endOnFailure: true };
}

/** Values that are wrong for almost every field. */
export const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity, -1, -0.5, 0.5, 2 ** 53, 2 ** 64, -(2 ** 63), Number.MAX_VALUE, 4_294_967_296),
  fc.constantFrom('', '../../etc/passwd', '..', '/', 'a/b', '\0', '__proto__', 'constructor', 'x'.repeat(70_000), null, undefined, true, false),
  fc.constantFrom([], {}, [[[[]]]], { type: 'ready' }, Buffer.alloc(0), Buffer.alloc(4096, 0xff), new Array(70_000).fill('aaaaaaaa')),
  fc.string({ maxLength: 80 }),
  fc.integer(),
  fc.double(),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { maxKeys: 4 }),
);

/** Valid values for a TypeBox schema (the kinds the protocol's schemas use). */
export function arbitraryOf(schema: TSchema): fc.Arbitrary<unknown> {
  const s = schema as TSchema & Record<string, unknown>;
  switch (s[Kind]) {
    case 'Literal':
      return fc.constant(s.const);
    case 'String':
      return typeof s.pattern === 'string'
        ? fc.stringMatching(new RegExp(s.pattern))
        : fc.string({ minLength: Number(s.minLength ?? 0), maxLength: Math.min(Number(s.maxLength ?? 40), 40) });
    case 'Integer':
      return fc.integer({ min: Math.max(Number(s.minimum ?? -(2 ** 31)), -(2 ** 31)), max: Math.min(Number(s.maximum ?? 2 ** 31 - 1), 2 ** 31 - 1) });
    case 'Number':
      return typeof s.minimum === 'number' ? fc.double({ min: s.minimum, max: 1e9, noNaN: true }) : fc.double({ min: -1e9, max: 1e9, noNaN: true });
    case 'Boolean':
      return fc.boolean();
    case 'Null':
      return fc.constant(null);
    case 'Uint8Array':
      return fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes));
    case 'Array':
      return fc.array(arbitraryOf(s.items as TSchema), { maxLength: 4 });
    case 'Tuple':
      return fc.tuple(...(s.items as TSchema[]).map(arbitraryOf));
    case 'Union':
      return fc.oneof(...(s.anyOf as TSchema[]).map(arbitraryOf));
    case 'Record': {
      const [pattern, value] = Object.entries(s.patternProperties as Record<string, TSchema>)[0]!;
      return fc.dictionary(fc.stringMatching(new RegExp(pattern)), arbitraryOf(value), { maxKeys: 3 });
    }
    case 'Object': {
      const properties = s.properties as Record<string, TSchema>;
      const required = Object.keys(properties).filter((key) => !(OptionalKind in properties[key]!));
      return fc.record(Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, arbitraryOf(value)])), { requiredKeys: required });
    }
    default:
      throw new Error(`arbitraryOf: no arbitrary for a schema of kind ${String(s[Kind])}`);
  }
}

/** Every place in a tree where a value can be put: [container, key] pairs. */
function places(value: unknown, found: [Record<string | number, unknown>, string | number][] = []): typeof found {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return found;
  const container = value as Record<string | number, unknown>;
  for (const key of Object.keys(container)) {
    found.push([container, Array.isArray(value) ? Number(key) : key]);
    places(container[key], found);
  }
  return found;
}

/**
 * Messages of a boundary's direction: a third valid, a third valid ones with one to three
 * values replaced by {@link hostile} ones (a field, an element, or a whole sub-object), a third
 * valid ones with a field added (any key, `__proto__` among them).
 */
export function messagesOf(messages: Messages): fc.Arbitrary<Record<string, unknown>> {
  const valid = fc.oneof(...Object.values(messages).map((schema) => arbitraryOf(schema) as fc.Arbitrary<Record<string, unknown>>));
  const edits = fc.array(fc.tuple(fc.nat(), hostile), { minLength: 1, maxLength: 3 });
  return fc.oneof(
    valid,
    fc.tuple(valid, edits).map(([generated, changes]) => {
      // Copies: fast-check reuses generated values when it shrinks, and one constant placed
      // twice would make a cycle.
      const message = structuredClone(generated);
      for (const [at, value] of changes) {
        const all = places(message);
        const [container, key] = all[at % all.length]!;
        container[key] = structuredClone(value);
      }
      return message;
    }),
    fc.tuple(valid, fc.string({ maxLength: 12 }), hostile).map(([message, key, value]) => ({ ...message, [key]: value })),
  );
}

/** Raw garbage: random bytes, and msgpack of random values (maps of wrong shapes among them). */
export const garbage: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 256 }),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Uint8Array.from([0xdd, 0x00, 0xff, 0xff, 0xff, ...bytes])),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Uint8Array.from([0xd4, 0x65, 0x00, ...bytes])),
);

/** Counts per boundary, printed at the end of each fuzz file for the closing note. */
export class FuzzCounts {
  readonly #counts = new Map<string, { tried: number; crashes: number }>();

  tried(boundary: string): void {
    this.#entry(boundary).tried++;
  }

  crashed(boundary: string): void {
    this.#entry(boundary).crashes++;
  }

  #entry(boundary: string) {
    let entry = this.#counts.get(boundary);
    if (!entry) this.#counts.set(boundary, (entry = { tried: 0, crashes: 0 }));
    return entry;
  }

  /** One line per boundary: `fuzz <boundary>: N messages, C crashes (seed S)`. */
  report(): string {
    return [...this.#counts].map(([boundary, { tried, crashes }]) => `fuzz ${boundary}: ${tried} messages, ${crashes} crashes (seed ${FUZZ_SEED})`).join('\n');
  }
}
