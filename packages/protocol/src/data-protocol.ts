/**
 * The node <-> node data boundary: object pulls on a WebSocket of their own, separate from the
 * control connection to the head. The puller connects to the holder's data server with the
 * cluster token in the upgrade (TOKEN_HEADER), says `hello`, then asks for objects with `pull`. The holder answers each with
 * `object` (the size, and the bytes themselves when the object is inline) and streams a segment
 * object as independent chunks: a `chunk` header message, then the chunk's bytes as the next
 * binary message, so neither side ever copies a chunk into a framing buffer. The puller grants
 * `window` bytes of credit and returns it with `ack` as it writes chunks out: that caps the bytes
 * in flight per pull.
 */
import { Type } from '@sinclair/typebox';
import { WireFailureSchema } from './head-protocol.js';
import { Bytes, Count, Id, decoderOf, message, type UnionOf } from './schema.js';

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const TO_HOLDER = {
  hello: message('hello', {}),
  /** `window`: the credit, in bytes, the holder may send ahead of acks (at least one byte). */
  pull: message('pull', { requestId: Count, id: Id, window: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }),
  ack: message('ack', { requestId: Count, bytes: Count }),
  /** The puller has its own copy now: the holder drops the hold it kept for it (task results). */
  release: message('release', { ids: Type.Array(Id) }),
};
/** Messages from a puller to a holder's data server. */
export type ToHolder = UnionOf<typeof TO_HOLDER>;

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const FROM_HOLDER = {
  welcome: message('welcome', { nodeId: Id }),
  object: message('object', {
    requestId: Count,
    size: Count,
    /** The serialized object, when it is inline (no chunks follow). */
    bytes: Type.Optional(Bytes),
    /** Ids of the objects whose refs are nested in this one (the holder has them too). */
    contains: Type.Optional(Type.Array(Id)),
  }),
  /** The next binary message holds `length` bytes of the object at `offset`. */
  chunk: message('chunk', { requestId: Count, offset: Count, length: Count }),
  /** The holder does not have the object (`freed`), or it is the failure of its task. */
  missing: message('missing', { requestId: Count, reason: Type.String(), failure: Type.Optional(WireFailureSchema) }),
};
/** Messages from a holder to a puller. */
export type FromHolder = UnionOf<typeof FROM_HOLDER>;

/**
 * Validates a message received by a holder (every field).
 * @throws BadMessageError naming the message and the field that is wrong.
 */
export const decodeToHolder: (raw: unknown) => ToHolder = decoderOf('a puller', TO_HOLDER);

/**
 * Validates a message received by a puller (every field).
 * @throws BadMessageError naming the message and the field that is wrong.
 */
export const decodeFromHolder: (raw: unknown) => FromHolder = decoderOf('a holder', FROM_HOLDER);
