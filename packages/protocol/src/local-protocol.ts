/**
 * The local boundary: a node and the processes of its machine (the workers it spawned, and
 * attached clients: any process that called `init({ address })`, including remote drivers the
 * head bridges in), as length-prefixed msgpackr frames on the node's unix socket (framing.ts).
 * The first message from a peer says which it is: `ready` (a worker) or `attach` (a client; it
 * never receives tasks). One schema per message; the types below are derived from them, and
 * {@link decodeWorkerMessage} / {@link decodeNodeMessage} check every field once at the edge.
 */
import { Type } from './typebox.js';
import { LENT_FILE_PATTERN } from './ids.js';
import { MAX_IDS_PER_MESSAGE, MAX_OUTPUT_CHARS } from './limits.js';
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
/** A task's runtimeEnv as it travels: environment variables and the working directory of its worker. */
export const RuntimeEnvSchema = Type.Object({
  env: Type.Record(Type.String({ minLength: 1, maxLength: 1024 }), Type.String({ maxLength: 1 << 20 }), { maxProperties: 4096 }),
  cwd: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
});
/** A task's runtimeEnv as it travels (see the runtime's RuntimeEnv). */
export type WireRuntimeEnv = MessageOf<typeof RuntimeEnvSchema>;

export const WireTaskOptionsSchema = Type.Object({
  numCpus: Amount,
  resources: Demand,
  maxRetries: Count,
  retryExceptions: Type.Union([Type.Boolean(), Type.Array(Type.String())]),
  timeoutMs: Type.Union([Amount, Type.Null()]),
  /** A streaming task (an async generator): items it may yield ahead of its consumer; absent for others. */
  streamWindow: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  /** The environment of the worker that runs it; absent: the node's own. */
  runtimeEnv: Type.Optional(RuntimeEnvSchema),
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

/** A method name of an actor's class (in a class's list, `*name` for an async generator method: it streams). */
export const MethodName = Type.String({ minLength: 1, maxLength: 256 });

/** An actor's options as they travel (resolved: every default applied). */
export const WireActorOptionsSchema = Type.Object({
  /** Findable by this name from every process of the node (`getActor`). */
  name: Type.Optional(Name),
  /** Lives on after its creator exits and its handles are gone, until killed or the node stops. */
  detached: Type.Boolean(),
  maxConcurrency: Type.Integer({ minimum: 1, maximum: 100_000 }),
  maxRestarts: Count,
  maxTaskRetries: Count,
  /** CPUs held while it lives (0 by default; placing it still needs a CPU on the node). */
  numCpus: Amount,
  resources: Demand,
  /** Items a streaming method may yield ahead of its consumer. */
  streamWindow: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  /** The environment of its process; absent: the node's. */
  runtimeEnv: Type.Optional(RuntimeEnvSchema),
});
export type WireActorOptions = MessageOf<typeof WireActorOptionsSchema>;

/** One item a streaming task or method yielded, as its worker reports it (stored like a result). */
const StreamItemSchema = Type.Object({ taskId: Count, index: Count, id: Id, result: ObjectPayloadSchema });

/** Which of a worker's streams output was written to. */
export const OutputStreamSchema = Type.Union([Type.Literal('out'), Type.Literal('err')]);
/** Which of a worker's streams output was written to: `out` (stdout) or `err` (stderr). */
export type OutputStream = MessageOf<typeof OutputStreamSchema>;
/** Text a task wrote (a worker's process.stdout/stderr), at most MAX_OUTPUT_CHARS per message. */
export const OutputTextSchema = Type.String({ maxLength: MAX_OUTPUT_CHARS });

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const TO_NODE = {
  ready: message('ready', { pid: Count }),
  /** An attached program; `output: false` (its `logToDriver: false`): its tasks' output stays with the node. */
  attach: message('attach', { pid: Count, output: Type.Optional(Type.Boolean()) }),
  /** What the task (or actor) this worker runs wrote to its stdout or stderr. */
  output: message('output', { stream: OutputStreamSchema, text: OutputTextSchema }),
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
  /**
   * Creates an actor whose lifetime object is `actorId` (put by the sender just before): `cls`
   * is its class's source, `args` its constructor's arguments.
   */
  'actor-create': message('actor-create', {
    actorId: Id,
    cls: ShippedFunctionSchema,
    methods: Type.Array(MethodName, { maxItems: 10_000 }),
    args: Type.Array(WireArgSchema),
    contains: Type.Array(Id),
    options: WireActorOptionsSchema,
  }),
  /** Calls `method` on actor `actorId`; its result becomes object `returnId`. */
  'actor-call': message('actor-call', { actorId: Id, returnId: Id, method: MethodName, args: Type.Array(WireArgSchema), contains: Type.Array(Id) }),
  /** Kills actor `actorId` (restarted within its maxRestarts unless `noRestart`). */
  'actor-kill': message('actor-kill', { actorId: Id, noRestart: Type.Boolean() }),
  /** Finds the live actor named `name` (answered by `actor-found`). */
  'actor-lookup': message('actor-lookup', { requestId: Count, name: Name }),
  /** From an actor's process: its constructor returned; calls may come. */
  'actor-ready': message('actor-ready', {}),
  /** From an actor's process: its constructor threw (an encoded error). */
  'actor-failed': message('actor-failed', { error: Bytes }),
  /** A streaming task or method yielded its item `index`. */
  'stream-item': message('stream-item', StreamItemSchema.properties),
  /**
   * From a streaming producer that reached the credit it knows of: may it yield item `index`?
   * Answered by `stream-go` once the consumer has taken enough (or stopped); meanwhile the
   * worker counts as blocked and lends its CPUs, as for a `resolve`.
   */
  'stream-wait': message('stream-wait', { requestId: Count, taskId: Count, index: Count }),
  /** Asks for item `index` of the stream of the task whose result is `returnId` (answered by `stream-next`). */
  'stream-pull': message('stream-pull', { requestId: Count, returnId: Id, index: Count }),
  /** The consumer of stream `returnId` stopped: its producer is stopped, and items not taken go. */
  'stream-close': message('stream-close', { returnId: Id }),
};

/** Messages from a worker or an attached client to the node. */
export type WorkerToNode = UnionOf<typeof TO_NODE>;

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const FROM_NODE = {
  /** Output of a task this program submitted, each line prefixed with its function and worker: print it. */
  output: message('output', { stream: OutputStreamSchema, text: OutputTextSchema }),
  execute: message('execute', {
    taskId: Count,
    returnId: Id,
    fn: WireFunctionSchema,
    args: Type.Array(WireArgSchema),
    /** A streaming task: items it may yield ahead of its consumer. */
    streamWindow: Type.Optional(Type.Integer({ minimum: 1 })),
  }),
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
  /** To an actor's own process: construct the instance (then `actor-ready` or `actor-failed`). */
  'actor-init': message('actor-init', {
    actorId: Id,
    cls: ShippedFunctionSchema,
    args: Type.Array(WireArgSchema),
    maxConcurrency: Type.Integer({ minimum: 1 }),
    streamWindow: Type.Integer({ minimum: 1 }),
  }),
  /** To an actor's process: call `method` (answered by `done` or `failed` with `taskId`). */
  call: message('call', { taskId: Count, returnId: Id, method: MethodName, args: Type.Array(WireArgSchema), stream: Type.Boolean() }),
  /** Answer to `actor-lookup`: the actor (id null when none has that name). */
  'actor-found': message('actor-found', {
    requestId: Count,
    actorId: Type.Union([Id, Type.Null()]),
    className: Type.String(),
    methods: Type.Array(MethodName),
  }),
  /**
   * To a streaming producer (a task or call `taskId` of this process, which may not have started
   * yet): `stop`, the consumer is gone, end the generator at its next `yield`; items up to `upTo`
   * (exclusive) may be yielded.
   */
  credit: message('credit', { taskId: Count, upTo: Count, stop: Type.Boolean() }),
  /** Answer to `stream-wait`: items below `upTo` may be yielded; `stop`: the consumer is gone, end the generator. */
  'stream-go': message('stream-go', { requestId: Count, upTo: Count, stop: Type.Boolean() }),
  /**
   * Answer to `stream-pull`: the item's id, or `end` (the stream is over: `error` when it failed,
   * after the items before it).
   */
  'stream-next': message('stream-next', { requestId: Count, id: Type.Optional(Id), end: Type.Boolean(), error: Type.Optional(Bytes) }),
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
