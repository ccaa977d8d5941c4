/**
 * The building blocks of the message schemas (TypeBox, checked by compiled validators) and the
 * one decoder every boundary uses. TypeBox won the measurement in bench/src/schema-decode.ts: a
 * compiled check of a task-path message costs tens to a few hundred nanoseconds, several times
 * less than valibot, next to a ~100 µs task round trip.
 */
import { Type, TypeCompiler, type Static, type TObject, type TSchema, type TypeCheck } from './typebox.js';
import { BadMessageError } from './errors.js';
import { ID_PATTERN, NAME_PATTERN } from './ids.js';

/**
 * A schema's type as a message type: every property and array readonly (as received messages
 * are never changed), byte arrays left as they are.
 */
export type Wire<T> = T extends Uint8Array ? T : T extends object ? { readonly [K in keyof T]: Wire<T[K]> } : T;

/** The message type a schema describes. */
export type MessageOf<S extends TSchema> = Wire<Static<S>>;

/** An id that may name a file (object, session and node ids): see isValidId. */
export const Id = Type.String({ pattern: ID_PATTERN.source });
/** The name of a named object: see checkObjectName. */
export const Name = Type.String({ pattern: NAME_PATTERN.source });
/** A count, size, offset, process id or request number: a non-negative safe integer. */
export const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** An amount of a resource (fractions allowed) or a duration: finite and non-negative. */
export const Amount = Type.Number({ minimum: 0 });
/** Encoded data (a serialized value, an encoded error): checked as bytes only, decoded later by its reader. */
export const Bytes = Type.Uint8Array();
/** A record keyed by ids (object id -> location, say): a key that is not an id is refused. */
export function byId<V extends TSchema>(value: V) {
  return Type.Record(Id, value, { additionalProperties: false });
}

/** What a task needs, by resource name: amounts are non-negative. */
export const Demand = Type.Record(Type.String(), Amount);
/**
 * Resources by name as a node reports them. Any finite amount: what is `available` can dip below
 * zero while the head's placements and the node's own tasks overlap, and sums of fractions drift.
 */
export const Resources = Type.Record(Type.String(), Type.Number());

/** The schema of one message: its `type` literal and its fields. */
export function message<T extends string, P extends Record<string, TSchema>>(type: T, fields: P) {
  return Type.Object({ type: Type.Literal(type), ...fields });
}

/** The messages of one direction of a boundary, by their `type`. */
export type Messages = Readonly<Record<string, TObject>>;

/** The union of the message types of a {@link Messages} table. */
export type UnionOf<M extends Messages> = { [K in keyof M]: MessageOf<M[K]> }[keyof M];

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/**
 * The decode function of one direction of a boundary: finds the message's schema by its `type`
 * and checks every field with that schema's compiled validator, once, at the edge. Handlers may
 * then trust every field. `from` names the sender for the error message.
 *
 * @throws BadMessageError naming the message and the field that is wrong.
 */
export function decoderOf<M extends Messages>(from: string, messages: M): (raw: unknown) => UnionOf<M> {
  // Each validator is compiled when its first message arrives, not at load: a process compiles
  // only the ones it uses (a worker meets a few of the local protocol's, none of the head's).
  const schemas = new Map(Object.entries(messages));
  const checks = new Map<string, TypeCheck<TObject>>();
  const checkOf = (type: string): TypeCheck<TObject> | undefined => {
    let check = checks.get(type);
    if (check) return check;
    const schema = schemas.get(type);
    if (!schema) return undefined;
    check = TypeCompiler.Compile(schema);
    checks.set(type, check);
    return check;
  };
  return (raw) => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new BadMessageError(`Unexpected message from ${from}: ${describe(raw)}, not a message object`);
    }
    const type = (raw as { type?: unknown }).type;
    const check = typeof type === 'string' ? checkOf(type) : undefined;
    // A peer's object is not stringified: its own `toString` could be anything (even a number, which throws).
    if (!check) throw new BadMessageError(`Unexpected message from ${from}: type \`${typeof type === 'object' ? describe(type) : String(type)}\``);
    if (check.Check(raw)) return raw as UnionOf<M>;
    const error = check.Errors(raw).First();
    const field = error?.path ? error.path.slice(1).replaceAll('/', '.') : '';
    throw new BadMessageError(
      `Malformed \`${type}\` message from ${from}: ${field ? `\`${field}\`` : 'a field'} ${error ? `is wrong (${error.message.toLowerCase()})` : 'is wrong'}`,
    );
  };
}
