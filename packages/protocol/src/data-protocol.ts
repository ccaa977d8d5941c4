/**
 * The node <-> node data boundary: object pulls on connections of their own, separate from the
 * control connection to the head. The puller opens a data connection (a WebSocket) to the
 * holder's data server with the cluster token in the upgrade (TOKEN_HEADER), says `hello` and is
 * welcomed with the connection's number. Bytes travel on bulk connections to the same port: HTTP
 * upgrades to BULK_UPGRADE with the token and that number (BULK_CONNECTION_HEADER), each answered
 * with its stream number (BULK_STREAM_HEADER); after the 101 the holder only writes and the
 * puller only reads. A `pull` names the stream its bytes go on: the holder answers `object` (the
 * size, and the bytes themselves when the object is inline) or `missing`, and for a segment object
 * writes its `size` raw bytes on that stream, nothing else, so the puller reads them straight
 * into the object's segment (no framing, no copy). One pull at a time per stream; TCP's own flow
 * control paces the holder.
 *
 * Relays (a broadcast at the cost of about one transfer): a puller that serves objects itself
 * gives its data URL in `hello`. A holder already sending a large segment object (RELAY_MIN_BYTES)
 * to such a puller answers a second pull of it with `relay`, naming that puller; the second puller
 * pulls it there with `direct` (no further relay), and that node sends the bytes on as they
 * arrive. The holder then names the newest puller for the next one, so the pullers form a chain,
 * each link carrying the object once. A pull the relay cannot serve goes back to the holder, `direct`.
 */
import { Type } from './typebox.js';
import { ClusterArgSchema, ClusterResultSchema, WireFailureSchema } from './head-protocol.js';
import { MethodName } from './local-protocol.js';
import { Bytes, Count, Id, decoderOf, message, type UnionOf } from './schema.js';

/** A node's data URL, where other nodes pull from it (`ws://host:port`). */
const DataUrl = Type.String({ pattern: '^wss?://[^\\s/]+(/[^\\s]*)?$', maxLength: 512 });

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const TO_HOLDER = {
  /** `relay`: the puller's own data URL, where it serves what it is pulling to later pullers. */
  hello: message('hello', { relay: Type.Optional(DataUrl) }),
  /**
   * `stream`: the bulk stream (of this connection, idle) the bytes of a segment object go on.
   * `direct`: send it, never answer `relay` (the puller was sent here by a relay, or its relay failed).
   */
  pull: message('pull', { requestId: Count, id: Id, stream: Count, direct: Type.Optional(Type.Boolean()) }),
  /** The puller has its own copy now: the holder drops the hold it kept for it (task results). */
  release: message('release', { ids: Type.Array(Id) }),
  /**
   * Calls `method` on actor `actorId`, which runs on the holder's node; its result becomes object
   * `returnId`, answered by `actor-result` (a segment result is then pulled, and released, as any
   * object). Calls on one connection reach the actor in the order sent.
   */
  'actor-call': message('actor-call', { requestId: Count, actorId: Id, returnId: Id, method: MethodName, args: Type.Array(ClusterArgSchema) }),
};
/** Messages from a puller to a holder's data server. */
export type ToHolder = UnionOf<typeof TO_HOLDER>;

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const FROM_HOLDER = {
  /** `connection`: the number bulk upgrades name (BULK_CONNECTION_HEADER) to serve this connection. */
  welcome: message('welcome', { nodeId: Id, connection: Count }),
  object: message('object', {
    requestId: Count,
    size: Count,
    /** The serialized object, when it is inline; otherwise `size` bytes follow on the pull's stream. */
    bytes: Type.Optional(Bytes),
    /** Ids of the objects whose refs are nested in this one (the holder has them too). */
    contains: Type.Optional(Type.Array(Id)),
  }),
  /** Pull the object at `url` instead (with `direct`): a node receiving it from this holder now, which sends it on. */
  relay: message('relay', { requestId: Count, url: DataUrl }),
  /** The holder does not have the object (`freed`), or it is the failure of its task. */
  missing: message('missing', { requestId: Count, reason: Type.String(), failure: Type.Optional(WireFailureSchema) }),
  /** How an `actor-call` ended (a segment result stays on the holder, held for the caller, until it releases it). */
  'actor-result': message('actor-result', { requestId: Count, result: ClusterResultSchema }),
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
