/**
 * The head boundary: messages between the head and the nodes, drivers and CLI commands of a
 * cluster, as msgpackr-encoded binary WebSocket messages. The cluster token is checked at the
 * upgrade (TOKEN_HEADER); the first message on every connection must then be `hello`, saying who
 * connects; anything else closes the connection.
 */

import { Type } from './typebox.js';
import { MethodName, OutputStreamSchema, OutputTextSchema, ShippedFunctionSchema, WireActorOptionsSchema, WireTaskOptionsSchema } from './local-protocol.js';
import { Amount, Bytes, Count, Id, byId, Name, Resources, decoderOf, message, type MessageOf, type UnionOf } from './schema.js';

const HeadRoleSchema = Type.Union([Type.Literal('node'), Type.Literal('cli')]);
/** Who is connecting to the head. */
export type HeadRole = MessageOf<typeof HeadRoleSchema>;

/** A node store's spilling: what is on disk now, and what was written and read back since it started. */
const SpillReportSchema = Type.Object({
  /** Bytes and number of objects on disk only (their memory went). */
  spilledBytes: Count,
  spilledObjects: Count,
  /** Bytes the spill files hold (with the copies kept of objects read back). */
  diskBytes: Count,
  spills: Count,
  spillBytesTotal: Count,
  spillMs: Amount,
  restores: Count,
  restoreBytesTotal: Count,
  restoreMs: Amount,
});

const NodeReportSchema = Type.Object({
  nodeId: Id,
  hostname: Type.String(),
  pid: Count,
  /** Where processes on the node's machine attach (its unix socket address). */
  address: Type.String(),
  /** Where other nodes pull this node's objects (its data server, `ws://IP:PORT`). */
  dataUrl: Type.String(),
  resources: Resources,
  available: Resources,
  objects: Count,
  objectBytes: Count,
  capacityBytes: Count,
  queuedTasks: Count,
  runningTasks: Count,
  workers: Count,
  /** File descriptors open in the node's process, and its soft limit (`ulimit -n`; absent when unlimited). */
  openFiles: Type.Optional(Count),
  fileLimit: Type.Optional(Count),
  /** Objects this node pulled from other nodes, and their bytes, since it started. */
  pulls: Count,
  pulledBytes: Count,
  /** The `seq` of the last `run` the node received (its `available` accounts for it). */
  runsSeen: Count,
  /** What its store spilled to disk and read back (see the store's `stats().spill`); absent from nodes older than spilling. */
  spill: Type.Optional(SpillReportSchema),
});
/** A node's resources and load, as it reports them. */
export type NodeReport = MessageOf<typeof NodeReportSchema>;

/** Milliseconds since the head last heard from it. */
const NodeStatusSchema = Type.Composite([NodeReportSchema, Type.Object({ lastSeenMs: Type.Number() })]);
/** A node as the head sees it (status output). */
export type NodeStatus = MessageOf<typeof NodeStatusSchema>;

export const ClusterArgSchema = Type.Union([
  Type.Object({ value: Bytes }),
  Type.Object({ ref: Id, owner: Id, size: Count, bytes: Type.Optional(Bytes) }),
]);
/**
 * A task argument as it crosses nodes: a value inline, or a ref with what is needed to fetch it
 * (its owner node, its size, and its bytes when it is small).
 */
export type ClusterArg = MessageOf<typeof ClusterArgSchema>;

const ClusterTaskSchema = Type.Object({
  returnId: Id,
  fn: ShippedFunctionSchema,
  args: Type.Array(ClusterArgSchema),
  options: WireTaskOptionsSchema,
});
/** A task that leaves its submitter's node ("spills") to run on another. */
export type ClusterTask = MessageOf<typeof ClusterTaskSchema>;

/** Why a task or object failed, across nodes: enough to rebuild the same error class (wire-errors.ts). */
export const WireFailureSchema = Type.Object({
  code: Type.String(),
  message: Type.String(),
  taskName: Type.Optional(Type.String()),
  /** The value a task threw, encoded (TaskError). */
  thrown: Type.Optional(Bytes),
  exitCode: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  signal: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  attempts: Type.Optional(Count),
  timeoutMs: Type.Optional(Amount),
  /** An ActorDiedError's actor, why it died (an ActorDeathReason as JSON), its restarts, and whether for good. */
  actor: Type.Optional(Type.Object({ name: Type.String(), reason: Type.String({ maxLength: 4096 }), restarts: Count, final: Type.Boolean() })),
});
export type WireFailure = MessageOf<typeof WireFailureSchema>;

const ClusterContainedSchema = Type.Object({ id: Id, owner: Id });
/** A ref nested in a result: its id and the node that owns it. */
export type ClusterContained = MessageOf<typeof ClusterContainedSchema>;

export const ClusterResultSchema = Type.Union([
  Type.Object({ ok: Type.Literal(true), size: Count, bytes: Type.Optional(Bytes), contains: Type.Array(ClusterContainedSchema) }),
  Type.Object({ ok: Type.Literal(false), failure: WireFailureSchema }),
]);
/** How a task that ran on another node ended. */
export type ClusterResult = MessageOf<typeof ClusterResultSchema>;

const ClusterActorSchema = Type.Object({
  /** Its lifetime object's id (on the node that made it: `origin`). */
  id: Id,
  cls: ShippedFunctionSchema,
  methods: Type.Array(MethodName, { maxItems: 10_000 }),
  args: Type.Array(ClusterArgSchema),
  options: WireActorOptionsSchema,
});
/** An actor as it crosses nodes: what a node needs to run it (its class, constructor arguments, options). */
export type ClusterActor = MessageOf<typeof ClusterActorSchema>;

/** Why a node asks the head to end an actor that runs elsewhere. */
const ActorEndSchema = Type.Union([Type.Literal('killed'), Type.Literal('out-of-scope'), Type.Literal('creator-exited'), Type.Literal('restart')]);
/** Why a node asks the head to end an actor (`restart`: only its process, it restarts within maxRestarts). */
export type ActorEnd = MessageOf<typeof ActorEndSchema>;

const LocatedActorSchema = Type.Object({ id: Id, className: Type.String(), methods: Type.Array(MethodName, { maxItems: 10_000 }), nodeId: Id, dataUrl: Type.String() });
/** Where an actor runs, as the head answers `actor-locate`. */
export type LocatedActor = MessageOf<typeof LocatedActorSchema>;

const PeerViewSchema = Type.Object({ nodeId: Id, dataUrl: Type.String(), total: Resources, available: Resources });
/** Another node as a node sees it (sent after every heartbeat). */
export type PeerView = MessageOf<typeof PeerViewSchema>;

/** Data URLs of the nodes holding each object, by object id. */
const HoldersSchema = byId(Type.Array(Type.String()));

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const TO_HEAD = {
  hello: message('hello', { role: HeadRoleSchema }),
  register: message('register', { node: NodeReportSchema }),
  heartbeat: message('heartbeat', { node: NodeReportSchema }),
  status: message('status', {}),
  /** A task the node cannot start now: the head places it elsewhere, or declines. */
  spill: message('spill', { task: ClusterTaskSchema }),
  /**
   * This node took the `run` numbered `seq` (task `returnId`). A run not acknowledged in time is
   * placed again elsewhere, and a late acknowledgement is answered with `cancel`.
   */
  accepted: message('accepted', { seq: Count, returnId: Id }),
  /** A task the head sent here ended (the result stays here until the submitter pulled it). */
  result: message('result', { origin: Id, returnId: Id, result: ClusterResultSchema }),
  /** The submitter gives up on a task (cancel). */
  cancel: message('cancel', { returnId: Id }),
  /** Output of a task the head sent here, for its origin node (lines already prefixed). */
  output: message('output', { origin: Id, returnId: Id, stream: OutputStreamSchema, text: OutputTextSchema }),
  /** Segment objects this node now holds, and ones it no longer holds (the object directory). */
  objects: message('objects', { added: Type.Array(Type.Tuple([Id, Count])), removed: Type.Array(Id) }),
  /** Which nodes hold these objects. */
  locate: message('locate', { requestId: Count, ids: Type.Array(Id) }),
  /** An actor made here that no resource of this node fits: the head places it on another node. */
  'actor-place': message('actor-place', { actor: ClusterActorSchema }),
  /** This node runs the actor now (made here, or placed here by the head for `origin`, which holds its lifetime). */
  'actor-hosted': message('actor-hosted', { origin: Id, actor: ClusterActorSchema }),
  /** An actor this node ran is dead for good (`failure`: the ActorDiedError). */
  'actor-ended': message('actor-ended', { actorId: Id, failure: WireFailureSchema }),
  /** End an actor that runs on another node (see ActorEnd). */
  'actor-end': message('actor-end', { actorId: Id, why: ActorEndSchema }),
  /** Where the actor of this id (or, with no id, this name) runs; answered by `actor-located`. */
  'actor-locate': message('actor-locate', { requestId: Count, actorId: Type.Optional(Id), name: Type.Optional(Name) }),
};
/** Messages to the head, from nodes and CLI commands. */
export type ToHead = UnionOf<typeof TO_HEAD>;

/** The schemas of this direction's messages, by type (the fuzz tests generate messages from them). */
export const FROM_HEAD = {
  welcome: message('welcome', { clusterId: Id }),
  registered: message('registered', { nodeId: Id }),
  status: message('status', { clusterId: Id, nodes: Type.Array(NodeStatusSchema) }),
  /** The other nodes, after each heartbeat. */
  view: message('view', { nodes: Type.Array(PeerViewSchema) }),
  /**
   * Run this task here for the node `origin`. `seq` numbers the runs sent to this node, so its
   * reports say which ones they account for.
   */
  run: message('run', { seq: Count, origin: Id, task: ClusterTaskSchema, sources: HoldersSchema }),
  /** No other node has room now: keep the task and run it here. */
  declined: message('declined', { returnId: Id }),
  /** A task this node spilled ended; `holder` (a node id, empty when none) has the result if it is not inline. */
  result: message('result', { returnId: Id, holder: Type.String(), holderUrl: Type.String(), result: ClusterResultSchema }),
  /** Stop this task (its submitter cancelled it or left). */
  cancel: message('cancel', { returnId: Id }),
  /** Output of a task this node spilled, written where it ran. */
  output: message('output', { returnId: Id, stream: OutputStreamSchema, text: OutputTextSchema }),
  /** Answer to `locate`: data URLs of the nodes holding each object. */
  located: message('located', { requestId: Count, holders: HoldersSchema }),
  /** Run this actor here, for node `origin`; `restarts`: times it was restarted before (on other nodes). */
  'actor-host': message('actor-host', { origin: Id, actor: ClusterActorSchema, restarts: Count }),
  /** End this actor (it runs here): `failure` is the ActorDiedError its calls get; `restart`: only its process. */
  'actor-end': message('actor-end', { actorId: Id, failure: WireFailureSchema, restart: Type.Boolean() }),
  /** An actor this node made (or asked about) is dead for good: `failure` says why. */
  'actor-died': message('actor-died', { actorId: Id, failure: WireFailureSchema }),
  /** Answer to `actor-locate`: where it runs, or why it is dead (neither: no such actor). */
  'actor-located': message('actor-located', { requestId: Count, actor: Type.Optional(LocatedActorSchema), failure: Type.Optional(WireFailureSchema) }),
};
/** Messages from the head, to nodes and CLI commands. */
export type FromHead = UnionOf<typeof FROM_HEAD>;

/**
 * Validates a message received by the head (every field).
 * @throws BadMessageError naming the message and the field that is wrong.
 */
export const decodeToHead: (raw: unknown) => ToHead = decoderOf('a head client', TO_HEAD);

/**
 * Validates a message received from the head (every field).
 * @throws BadMessageError naming the message and the field that is wrong.
 */
export const decodeFromHead: (raw: unknown) => FromHead = decoderOf('the head', FROM_HEAD);

// The close codes the head uses are in limits.ts (and stay importable from here).
