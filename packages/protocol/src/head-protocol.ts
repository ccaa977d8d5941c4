/**
 * The head boundary: messages between the head and the nodes, drivers and CLI commands of a
 * cluster, as msgpackr-encoded binary WebSocket messages. The first message on every connection
 * must be `hello` with the cluster token; anything else closes the connection.
 */

/** Who is connecting to the head. */
export type HeadRole = 'node' | 'cli';

/** A node's resources and load, as it reports them. */
export interface NodeReport {
  readonly nodeId: string;
  readonly hostname: string;
  readonly pid: number;
  /** Where processes on the node's machine attach (its unix socket address). */
  readonly address: string;
  readonly resources: Readonly<Record<string, number>>;
  readonly available: Readonly<Record<string, number>>;
  readonly objects: number;
  readonly objectBytes: number;
  readonly capacityBytes: number;
  readonly queuedTasks: number;
  readonly runningTasks: number;
  readonly workers: number;
}

/** A node as the head sees it (status output). */
export interface NodeStatus extends NodeReport {
  /** Milliseconds since the head last heard from it. */
  readonly lastSeenMs: number;
}

export type ToHead =
  | { readonly type: 'hello'; readonly token: string; readonly role: HeadRole }
  | { readonly type: 'register'; readonly node: NodeReport }
  | { readonly type: 'heartbeat'; readonly node: NodeReport }
  | { readonly type: 'status' };

export type FromHead =
  | { readonly type: 'welcome'; readonly clusterId: string }
  | { readonly type: 'registered'; readonly nodeId: string }
  | { readonly type: 'status'; readonly clusterId: string; readonly nodes: readonly NodeStatus[] };

/** Close codes the head uses (4000-4999 is the application range). */
export const CLOSE_BAD_TOKEN = 4001;
export const CLOSE_PROTOCOL_ERROR = 4002;
export const CLOSE_TIMEOUT = 4003;

const TO_HEAD = new Set(['hello', 'register', 'heartbeat', 'status']);
const FROM_HEAD = new Set(['welcome', 'registered', 'status']);

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
    isRecord(value.resources) &&
    isRecord(value.available) &&
    ['objects', 'objectBytes', 'capacityBytes', 'queuedTasks', 'runningTasks', 'workers'].every(
      (key) => typeof value[key] === 'number',
    )
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
