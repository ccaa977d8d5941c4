/**
 * The head boundary: messages between the head and the nodes, drivers and CLI commands of a
 * cluster, as msgpackr-encoded binary WebSocket messages. The first message on every connection
 * must be `hello` with the cluster token; anything else closes the connection.
 */

import type { WireTaskOptions } from './worker-protocol.js';

/** Who is connecting to the head. */
export type HeadRole = 'node' | 'cli';

/** A node's resources and load, as it reports them. */
export interface NodeReport {
  readonly nodeId: string;
  readonly hostname: string;
  readonly pid: number;
  /** Where processes on the node's machine attach (its unix socket address). */
  readonly address: string;
  /** Where other nodes pull this node's objects (its data server, `ws://IP:PORT`). */
  readonly dataUrl: string;
  readonly resources: Readonly<Record<string, number>>;
  readonly available: Readonly<Record<string, number>>;
  readonly objects: number;
  readonly objectBytes: number;
  readonly capacityBytes: number;
  readonly queuedTasks: number;
  readonly runningTasks: number;
  readonly workers: number;
  /** Objects this node pulled from other nodes, and their bytes, since it started. */
  readonly pulls: number;
  readonly pulledBytes: number;
  /** The `seq` of the last `run` the node received (its `available` accounts for it). */
  readonly runsSeen: number;
}

/** A node as the head sees it (status output). */
export interface NodeStatus extends NodeReport {
  /** Milliseconds since the head last heard from it. */
  readonly lastSeenMs: number;
}

/**
 * A task argument as it crosses nodes: a value inline, or a ref with what is needed to fetch it
 * (its owner node, its size, and its bytes when it is small).
 */
export type ClusterArg =
  | { readonly value: Uint8Array }
  | { readonly ref: string; readonly owner: string; readonly size: number; readonly bytes?: Uint8Array };

/** A task that leaves its submitter's node ("spills") to run on another. */
export interface ClusterTask {
  readonly returnId: string;
  readonly fn: { readonly hash: string; readonly name: string; readonly source: string };
  readonly args: readonly ClusterArg[];
  readonly options: WireTaskOptions;
}

/** Why a task or object failed, across nodes: enough to rebuild the same error class. */
export interface WireFailure {
  readonly code: string;
  readonly message: string;
  readonly taskName?: string;
  /** The value a task threw, encoded (TaskError). */
  readonly thrown?: Uint8Array;
  readonly exitCode?: number | null;
  readonly signal?: string | null;
  readonly attempts?: number;
  readonly timeoutMs?: number;
}

/** How a task that ran on another node ended. */
export type ClusterResult =
  | { readonly ok: true; readonly size: number; readonly bytes?: Uint8Array; readonly contains: readonly ClusterContained[] }
  | { readonly ok: false; readonly failure: WireFailure };

/** A ref nested in a result: its id and the node that owns it. */
export interface ClusterContained {
  readonly id: string;
  readonly owner: string;
}

/** Another node as a node sees it (sent after every heartbeat). */
export interface PeerView {
  readonly nodeId: string;
  readonly dataUrl: string;
  readonly total: Readonly<Record<string, number>>;
  readonly available: Readonly<Record<string, number>>;
}

export type ToHead =
  | { readonly type: 'hello'; readonly token: string; readonly role: HeadRole }
  | { readonly type: 'register'; readonly node: NodeReport }
  | { readonly type: 'heartbeat'; readonly node: NodeReport }
  | { readonly type: 'status' }
  /** A task the node cannot start now: the head places it elsewhere, or declines. */
  | { readonly type: 'spill'; readonly task: ClusterTask }
  /** A task the head sent here ended (the result stays here until the submitter pulled it). */
  | { readonly type: 'result'; readonly origin: string; readonly returnId: string; readonly result: ClusterResult }
  /** The submitter gives up on a task (cancel). */
  | { readonly type: 'cancel'; readonly returnId: string }
  /** Segment objects this node now holds, and ones it no longer holds (the object directory). */
  | { readonly type: 'objects'; readonly added: readonly (readonly [string, number])[]; readonly removed: readonly string[] }
  /** Which nodes hold these objects. */
  | { readonly type: 'locate'; readonly requestId: number; readonly ids: readonly string[] };

export type FromHead =
  | { readonly type: 'welcome'; readonly clusterId: string }
  | { readonly type: 'registered'; readonly nodeId: string }
  | { readonly type: 'status'; readonly clusterId: string; readonly nodes: readonly NodeStatus[] }
  /** The other nodes, after each heartbeat. */
  | { readonly type: 'view'; readonly nodes: readonly PeerView[] }
  /** Run this task here for the node `origin`. */
  | {
      readonly type: 'run';
      /** Numbers the runs sent to this node, so its reports say which ones they account for. */
      readonly seq: number;
      readonly origin: string;
      readonly task: ClusterTask;
      readonly sources: Readonly<Record<string, readonly string[]>>;
    }
  /** No other node has room now: keep the task and run it here. */
  | { readonly type: 'declined'; readonly returnId: string }
  /** A task this node spilled ended; `holder` has the result if it is not inline. */
  | { readonly type: 'result'; readonly returnId: string; readonly holder: string; readonly holderUrl: string; readonly result: ClusterResult }
  /** Stop this task (its submitter cancelled it or left). */
  | { readonly type: 'cancel'; readonly returnId: string }
  /** Answer to `locate`: data URLs of the nodes holding each object. */
  | { readonly type: 'located'; readonly requestId: number; readonly holders: Readonly<Record<string, readonly string[]>> };

// The close codes the head uses are in limits.ts (and stay importable from here).
export { CLOSE_BAD_TOKEN, CLOSE_PROTOCOL_ERROR, CLOSE_TIMEOUT } from './limits.js';

const TO_HEAD = new Set(['hello', 'register', 'heartbeat', 'status', 'spill', 'result', 'cancel', 'objects', 'locate']);
const FROM_HEAD = new Set(['welcome', 'registered', 'status', 'view', 'run', 'declined', 'result', 'cancel', 'located']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isNodeReport(value: unknown): value is NodeReport {
  if (!isRecord(value)) return false;
  return (
    typeof value.nodeId === 'string' &&
    typeof value.hostname === 'string' &&
    typeof value.pid === 'number' &&
    typeof value.address === 'string' &&
    typeof value.dataUrl === 'string' &&
    isRecord(value.resources) &&
    isRecord(value.available) &&
    ['objects', 'objectBytes', 'capacityBytes', 'queuedTasks', 'runningTasks', 'workers', 'pulls', 'pulledBytes', 'runsSeen'].every(
      (key) => typeof value[key] === 'number',
    )
  );
}

function isClusterTask(value: unknown): value is ClusterTask {
  if (!isRecord(value) || typeof value.returnId !== 'string' || !isRecord(value.fn) || !isRecord(value.options)) return false;
  const fn = value.fn;
  if (typeof fn.hash !== 'string' || typeof fn.name !== 'string' || typeof fn.source !== 'string') return false;
  if (!Array.isArray(value.args)) return false;
  return value.args.every(
    (arg) =>
      isRecord(arg) &&
      (arg.value instanceof Uint8Array ||
        (typeof arg.ref === 'string' && typeof arg.owner === 'string' && typeof arg.size === 'number')),
  );
}

/** Validates a message received by the head. @throws TypeError saying what is wrong. */
export function decodeToHead(message: unknown): ToHead {
  if (!isRecord(message) || !TO_HEAD.has(message.type as string)) {
    throw new TypeError(`unknown message type \`${isRecord(message) ? String(message.type) : typeof message}\``);
  }
  switch (message.type) {
    case 'hello':
      if (typeof message.token !== 'string' || (message.role !== 'node' && message.role !== 'cli')) {
        throw new TypeError('malformed hello');
      }
      break;
    case 'register':
    case 'heartbeat':
      if (!isNodeReport(message.node)) throw new TypeError(`malformed ${message.type}`);
      break;
    case 'spill':
      if (!isClusterTask(message.task)) throw new TypeError('malformed spill');
      break;
    case 'result':
      if (typeof message.origin !== 'string' || typeof message.returnId !== 'string' || !isRecord(message.result)) {
        throw new TypeError('malformed result');
      }
      break;
    case 'cancel':
      if (typeof message.returnId !== 'string') throw new TypeError('malformed cancel');
      break;
    case 'objects':
      if (!Array.isArray(message.added) || !Array.isArray(message.removed)) throw new TypeError('malformed objects');
      if (!message.added.every((entry) => Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'number')) {
        throw new TypeError('malformed objects');
      }
      if (!message.removed.every((id) => typeof id === 'string')) throw new TypeError('malformed objects');
      break;
    case 'locate':
      if (typeof message.requestId !== 'number' || !Array.isArray(message.ids) || !message.ids.every((id) => typeof id === 'string')) {
        throw new TypeError('malformed locate');
      }
      break;
  }
  return message as ToHead;
}

/** Validates a message received from the head. @throws TypeError saying what is wrong. */
export function decodeFromHead(message: unknown): FromHead {
  if (!isRecord(message) || !FROM_HEAD.has(message.type as string)) {
    throw new TypeError(`unknown message type \`${isRecord(message) ? String(message.type) : typeof message}\``);
  }
  return message as FromHead;
}
