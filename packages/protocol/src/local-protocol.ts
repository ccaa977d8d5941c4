/**
 * The local boundary: a node and the processes of its machine (the workers it spawned, and
 * attached clients: any process that called `init({ address })`, including remote drivers the
 * head bridges in), as length-prefixed msgpackr frames on the node's unix socket (framing.ts).
 * The first message from a peer says which it is: `ready` (a worker) or `attach` (a client; it
 * never receives tasks). One schema per message; the types below are derived from them, and
 * {@link decodeWorkerMessage} / {@link decodeNodeMessage} check every field once at the edge.
 */
import { Type } from '@sinclair/typebox';
import { LENT_FILE_PATTERN } from './ids.js';
import { MAX_IDS_PER_MESSAGE } from './limits.js';
import { Amount, Bytes, Count, Demand, Id, byId, Name, decoderOf, message, type MessageOf, type UnionOf } from './schema.js';

/** A list of ids a node answers or acts on one by one: at most MAX_IDS_PER_MESSAGE of them. */
const IdList = Type.Array(Id, { maxItems: MAX_IDS_PER_MESSAGE });
/** A file the node lends a worker to fill (a name in the session directory, never a path). */
const LentName = Type.String({ pattern: LENT_FILE_PATTERN.source, maxLength: 20 });

const ObjectLocationSchema = Type.Union([
  /** Inline: the serialized bytes themselves. */
  Type.Object({ kind: Type.Literal('inline'), bytes: Bytes }),
  /** In a segment file of the node's session directory, named by the object id. */
  Type.Object({ kind: Type.Literal('segment'), size: Count }),
  /** The object is the failure of the task that should have made it: an encoded Error. */
  Type.Object({ kind: Type.Literal('error'), error: Bytes }),
  /** The object was freed (or never existed). */
  Type.Object({ kind: Type.Literal('freed') }),
  /**
   * Only for an argument of a task sent to a worker: the object is spilled to disk (the task was
   * queued, or there was no room yet); the worker asks for it (`resolve`) when the task starts.
   */
  Type.Object({ kind: Type.Literal('spilled') }),
]);
/** Where an object is, as the node tells a worker. */
export type ObjectLocation = MessageOf<typeof ObjectLocationSchema>;

const ObjectPayloadSchema = Type.Object({
  size: Count,
  /** Present for inline objects; absent when the worker wrote the segment itself. */
  bytes: Type.Optional(Bytes),
  /** Ids of objects whose refs are nested in this one (kept alive while it lives). */
  contains: Type.Array(Id),
});
/** A stored object made by a worker (a put or a task result), as it tells the node. */
export type ObjectPayload = MessageOf<typeof ObjectPayloadSchema>;

const WireArgSchema = Type.Union([
  Type.Object({ value: Bytes }),
  /** `owner`: the session (node) that made the object, to fetch it from in a cluster. */
  Type.Object({ ref: Id, owner: Type.Optional(Id), location: Type.Optional(ObjectLocationSchema) }),
]);
/** A task argument on the wire: a value inline, or a ref resolved before the function runs. */
export type WireArg = MessageOf<typeof WireArgSchema>;

const WireFunctionSchema = Type.Object({ hash: Type.String(), name: Type.String(), source: Type.Optional(Type.String()) });
/** A remote function: its source travels only the first time a worker needs it. */
export type WireFunction = MessageOf<typeof WireFunctionSchema>;

/** A task's options as they travel (resolved: every default applied). */
export const WireTaskOptionsSchema = Type.Object({
  numCpus: Amount,
  resources: Demand,
  maxRetries: Count,
  retryExceptions: Type.Union([Type.Boolean(), Type.Array(Type.String())]),
  timeoutMs: Type.Union([Amount, Type.Null()]),
});
export type WireTaskOptions = MessageOf<typeof WireTaskOptionsSchema>;

/** A function with its source: what a task that leaves its submitter carries. */
export const ShippedFunctionSchema = Type.Object({ hash: Type.String(), name: Type.String(), source: Type.String() });

const WireTaskSchema = Type.Object({
  returnId: Id,
  fn: ShippedFunctionSchema,
  args: Type.Array(WireArgSchema),
  /** Ids of refs nested inside inline arguments. */
  contains: Type.Array(Id),
  options: WireTaskOptionsSchema,
});
/** A task as submitted from a worker (nested task) or a client. */
export type WireTask = MessageOf<typeof WireTaskSchema>;

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const TO_NODE = {
  ready: message('ready', { pid: Count }),
  attach: message('attach', { pid: Count }),
  bind: message('bind', { requestId: Count, name: Name, id: Id }),
  lookup: message('lookup', { requestId: Count, name: Name }),
  watch: message('watch', { name: Name }),
  unwatch: message('unwatch', { name: Name }),
  done: message('done', { taskId: Count, result: ObjectPayloadSchema }),
  failed: message('failed', { taskId: Count, error: Bytes }),
  put: message('put', { id: Id, payload: ObjectPayloadSchema }),
  submit: message('submit', { task: WireTaskSchema }),
  /** `owners[i]`: the session that made `ids[i]`, for objects the node must fetch from another node. */
  resolve: message('resolve', { requestId: Count, ids: IdList, owners: Type.Optional(IdList) }),
  wait: message('wait', { requestId: Count, ids: IdList, numReturns: Count, timeoutMs: Type.Union([Amount, Type.Null()]) }),
  /** Asks for room for a segment of `size` bytes about to be written as object `id` (a task result), before writing it. */
  reserve: message('reserve', { requestId: Count, id: Id, size: Count }),
  /**
   * Asks the node to make room for `size` more bytes (spilling, and having its processes let go
   * of mappings they no longer need), for puts to follow; answered by `reserved` (no room is held).
   */
  room: message('room', { requestId: Count, size: Count }),
  /** Answer to `collect`, sent after the `refs` releases of what the collection found dropped. */
  collected: message('collected', { round: Count }),
  cancel: message('cancel', { id: Id }),
  free: message('free', { ids: IdList }),
  refs: message('refs', { hold: IdList, release: IdList }),
  /** Answer to `recall`: the queued tasks it gave back (not started yet). */
  recalled: message('recalled', { taskIds: Type.Array(Count) }),
};

/** Messages from a worker or an attached client to the node. */
export type WorkerToNode = UnionOf<typeof TO_NODE>;

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const FROM_NODE = {
  execute: message('execute', { taskId: Count, returnId: Id, fn: WireFunctionSchema, args: Type.Array(WireArgSchema) }),
  resolved: message('resolved', { requestId: Count, locations: byId(ObjectLocationSchema) }),
  waited: message('waited', { requestId: Count, ready: Type.Array(Id) }),
  /** These objects were freed: drop cached mappings of them (views in use keep theirs). */
  forget: message('forget', { ids: Type.Array(Id) }),
  /** Give back these queued tasks if they have not started. */
  recall: message('recall', { taskIds: Type.Array(Count) }),
  shutdown: message('shutdown', {}),
  /** Answer to `attach`: where the session's segments are. */
  welcome: message('welcome', { sessionId: Id, directory: Type.String(), inlineThreshold: Count }),
  /**
   * Answer to `reserve`: the room is held for the object, or the encoded ObjectStoreFullError.
   * `lent`: the name of a file of reused memory in the session directory (`lent.N`) for the
   * worker to fill instead of creating one; the node names it after the object when it arrives.
   */
  reserved: message('reserved', { requestId: Count, error: Type.Optional(Bytes), lent: Type.Optional(LentName) }),
  /** The store is short of room: collect garbage, send the releases of refs dropped, then `collected`. */
  collect: message('collect', { round: Count }),
  /** Answer to `bind`: the name's new version, or why it failed. */
  bound: message('bound', { requestId: Count, version: Count, error: Type.Optional(Type.String()) }),
  /** Answer to `lookup`: the current binding (id null when the name is unbound). */
  'looked-up': message('looked-up', {
    requestId: Count,
    id: Type.Union([Id, Type.Null()]),
    version: Count,
    location: Type.Optional(ObjectLocationSchema),
  }),
  /** A watched name was bound (sent once at `watch` time if bound, then on every change). */
  named: message('named', { name: Name, id: Id, version: Count }),
};

/** Messages from the node to a worker or an attached client. */
export type NodeToWorker = UnionOf<typeof FROM_NODE>;

/**
 * Validates a message received from a worker or a client (every field).
 * @throws BadMessageError naming the message and the field that is wrong.
 */
export const decodeWorkerMessage: (raw: unknown) => WorkerToNode = decoderOf('a worker', TO_NODE);

/**
 * Validates a message received from the node (every field).
 * @throws BadMessageError naming the message and the field that is wrong.
 */
export const decodeNodeMessage: (raw: unknown) => NodeToWorker = decoderOf('the node', FROM_NODE);
