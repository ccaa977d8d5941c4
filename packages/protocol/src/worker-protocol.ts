/**
 * The node <-> worker boundary: messages on a local unix socket, as length-prefixed msgpackr
 * frames (framing.ts). Each side validates what it receives with the `decode` functions below.
 */

/** Where an object is, as the node tells a worker. */
export type ObjectLocation =
  /** Inline: the serialized bytes themselves. */
  | { readonly kind: 'inline'; readonly bytes: Uint8Array }
  /** In a segment file of the node's session directory, named by the object id. */
  | { readonly kind: 'segment'; readonly size: number }
  /** The object is the failure of the task that should have made it: an encoded Error. */
  | { readonly kind: 'error'; readonly error: Uint8Array }
  /** The object was freed (or never existed). */
  | { readonly kind: 'freed' };

/** A stored object made by a worker (a put or a task result), as it tells the node. */
export interface ObjectPayload {
  readonly size: number;
  /** Present for inline objects; absent when the worker wrote the segment itself. */
  readonly bytes?: Uint8Array;
  /** Ids of objects whose refs are nested in this one (kept alive while it lives). */
  readonly contains: readonly string[];
}

/** A task argument on the wire: a value inline, or a ref resolved before the function runs. */
export type WireArg =
  | { readonly value: Uint8Array }
  /** `owner`: the session (node) that made the object, to fetch it from in a cluster. */
  | { readonly ref: string; readonly owner?: string; readonly location?: ObjectLocation };

/** A remote function: its source travels only the first time a worker needs it. */
export interface WireFunction {
  readonly hash: string;
  readonly name: string;
  readonly source?: string;
}

/** A task as submitted from a worker (nested task). */
export interface WireTask {
  readonly returnId: string;
  readonly fn: WireFunction & { readonly source: string };
  readonly args: readonly WireArg[];
  /** Ids of refs nested inside inline arguments. */
  readonly contains: readonly string[];
  readonly options: WireTaskOptions;
}

export interface WireTaskOptions {
  readonly numCpus: number;
  readonly resources: Readonly<Record<string, number>>;
  readonly maxRetries: number;
  readonly retryExceptions: boolean | readonly string[];
  readonly timeoutMs: number | null;
}

/**
 * Messages from a worker or an attached client (any process of the machine that called
 * `init({ address })`) to the node. The first message says which: `ready` (a worker the node
 * spawned) or `attach` (a client; it never receives tasks).
 */
export type WorkerToNode =
  | { readonly type: 'ready'; readonly pid: number }
  | { readonly type: 'attach'; readonly pid: number }
  | { readonly type: 'bind'; readonly requestId: number; readonly name: string; readonly id: string }
  | { readonly type: 'lookup'; readonly requestId: number; readonly name: string }
  | { readonly type: 'watch'; readonly name: string }
  | { readonly type: 'unwatch'; readonly name: string }
  | { readonly type: 'done'; readonly taskId: number; readonly result: ObjectPayload }
  | { readonly type: 'failed'; readonly taskId: number; readonly error: Uint8Array }
  | { readonly type: 'put'; readonly id: string; readonly payload: ObjectPayload }
  | { readonly type: 'submit'; readonly task: WireTask }
  /** `owners[i]`: the session that made `ids[i]`, for objects the node must fetch from another node. */
  | { readonly type: 'resolve'; readonly requestId: number; readonly ids: readonly string[]; readonly owners?: readonly string[] }
  | {
      readonly type: 'wait';
      readonly requestId: number;
      readonly ids: readonly string[];
      readonly numReturns: number;
      readonly timeoutMs: number | null;
    }
  | { readonly type: 'cancel'; readonly id: string }
  | { readonly type: 'free'; readonly ids: readonly string[] }
  | { readonly type: 'refs'; readonly hold: readonly string[]; readonly release: readonly string[] }
  /** Answer to `recall`: the queued tasks it gave back (not started yet). */
  | { readonly type: 'recalled'; readonly taskIds: readonly number[] };

export type NodeToWorker =
  | {
      readonly type: 'execute';
      readonly taskId: number;
      readonly returnId: string;
      readonly fn: WireFunction;
      readonly args: readonly WireArg[];
    }
  | { readonly type: 'resolved'; readonly requestId: number; readonly locations: Readonly<Record<string, ObjectLocation>> }
  | { readonly type: 'waited'; readonly requestId: number; readonly ready: readonly string[] }
  /** These objects were freed: drop cached mappings of them (views in use keep theirs). */
  | { readonly type: 'forget'; readonly ids: readonly string[] }
  /** Give back these queued tasks if they have not started. */
  | { readonly type: 'recall'; readonly taskIds: readonly number[] }
  | { readonly type: 'shutdown' }
  /** Answer to `attach`: where the session's segments are. */
  | { readonly type: 'welcome'; readonly sessionId: string; readonly directory: string; readonly inlineThreshold: number }
  /** Answer to `bind`: the name's new version, or why it failed. */
  | { readonly type: 'bound'; readonly requestId: number; readonly version: number; readonly error?: string }
  /** Answer to `lookup`: the current binding (id null when the name is unbound). */
  | {
      readonly type: 'looked-up';
      readonly requestId: number;
      readonly id: string | null;
      readonly version: number;
      readonly location?: ObjectLocation;
    }
  /** A watched name was bound (sent once at `watch` time if bound, then on every change). */
  | { readonly type: 'named'; readonly name: string; readonly id: string; readonly version: number };

const WORKER_TYPES = new Set([
  'ready',
  'attach',
  'done',
  'failed',
  'put',
  'submit',
  'resolve',
  'wait',
  'cancel',
  'free',
  'refs',
  'recalled',
  'bind',
  'lookup',
  'watch',
  'unwatch',
]);
const NODE_TYPES = new Set(['execute', 'resolved', 'waited', 'recall', 'shutdown', 'welcome', 'bound', 'looked-up', 'named', 'forget']);

function check(message: unknown, types: Set<string>, side: string): { type: string } {
  if (message === null || typeof message !== 'object' || !types.has((message as { type?: unknown }).type as string)) {
    const type = message !== null && typeof message === 'object' ? String((message as { type?: unknown }).type) : typeof message;
    throw new TypeError(`Unexpected message from ${side}: type \`${type}\``);
  }
  return message as { type: string };
}

/** Validates a message received from a worker. @throws TypeError for an unknown message. */
export function decodeWorkerMessage(message: unknown): WorkerToNode {
  return check(message, WORKER_TYPES, 'a worker') as WorkerToNode;
}

/** Validates a message received from the node. @throws TypeError for an unknown message. */
export function decodeNodeMessage(message: unknown): NodeToWorker {
  return check(message, NODE_TYPES, 'the node') as NodeToWorker;
}
