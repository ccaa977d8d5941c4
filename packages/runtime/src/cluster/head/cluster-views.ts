// What the head shows of the whole cluster beyond its membership (the dashboard's tasks,
// `shoal memory`'s objects): asked of every member's data port and merged here.
import type { FunctionTally, NodeObject, NodeStatus, ObjectHolder, TaskFailure, TaskSummary, TimelineSpan, NodeLog } from '@shoal/protocol';

/** A failed task, with the node it failed on. */
export type ClusterFailure = TaskFailure & { readonly node: string };

/** Nodes that did not answer, and why. */
export type Unreachable = { readonly node: string; readonly reason: string }[];

/** The cluster's tasks as the dashboard shows them (`/api/tasks` on the head). */
export interface ClusterTasks {
  /** Each function's tasks across the cluster (each node counts those submitted to it and run on it). */
  readonly functions: FunctionTally[];
  /** The last failures, newest first. */
  readonly failures: ClusterFailure[];
  readonly unreachable: Unreachable;
}

/** An object as `shoal memory` lists it: the nodes holding a copy, and on each the processes holding refs. */
export interface ClusterObject extends Omit<NodeObject, 'holders'> {
  readonly nodes: string[];
  readonly holders: (ObjectHolder & { readonly node: string })[];
}

/** Every live object of the cluster, largest first (`/api/objects` on the head). */
export interface ClusterObjects {
  readonly objects: ClusterObject[];
  readonly unreachable: Unreachable;
}

/** How long the head waits for a node's answer, and the most it reads of one. */
const ASK_TIMEOUT_MS = 2000;
const MAX_ANSWER_CHARS = 16 * 1024 * 1024;
const FAILURES_SHOWN = 20;
const COUNTS = ['submitted', 'started', 'finished', 'failed', 'runs', 'runSeconds'] as const;

/**
 * Asks every member's data port for `path` (with the cluster token), in parallel, 2 s each: the
 * nodes that answered with their parsed JSON, and those that did not, with why.
 */
async function askNodes<T>(nodes: readonly NodeStatus[], token: string, path: string): Promise<{ answers: [NodeStatus, T][]; unreachable: Unreachable }> {
  const answers: [NodeStatus, T][] = [];
  const unreachable: { node: string; reason: string }[] = [];
  await Promise.all(
    nodes.map(async (node) => {
      try {
        const response = await fetch(`${node.dataUrl.replace(/^ws/, 'http')}${path}`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(ASK_TIMEOUT_MS),
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const text = await response.text();
        if (text.length > MAX_ANSWER_CHARS) throw new Error(`answered ${text.length} characters, more than ${MAX_ANSWER_CHARS}`);
        answers.push([node, JSON.parse(text) as T]);
      } catch (error) {
        unreachable.push({ node: node.nodeId, reason: (error as Error).message });
      }
    }),
  );
  return { answers, unreachable };
}

/** The tasks of every node, merged: counts summed by function name, failures newest first. */
export async function clusterTasks(nodes: readonly NodeStatus[], token: string): Promise<ClusterTasks> {
  const { answers, unreachable } = await askNodes<TaskSummary>(nodes, token, '/api/tasks');
  const byName = new Map<string, FunctionTally>();
  const failures: ClusterFailure[] = [];
  for (const [node, summary] of answers) {
    // What a node says is data: names and texts stay strings, counts numbers.
    for (const tally of summary.functions) {
      const name = String(tally.name);
      const total = byName.get(name) ?? { name, submitted: 0, started: 0, finished: 0, failed: 0, runs: 0, runSeconds: 0 };
      for (const key of COUNTS) total[key] += Number(tally[key]) || 0;
      byName.set(name, total);
    }
    for (const failure of summary.failures.slice(0, FAILURES_SHOWN)) {
      const stack = typeof failure.stack === 'string' ? failure.stack : undefined;
      failures.push({ node: node.nodeId, name: String(failure.name), returnId: String(failure.returnId), at: Number(failure.at) || 0, error: String(failure.error), message: String(failure.message), stack });
    }
  }
  failures.sort((a, b) => b.at - a.at);
  return { functions: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)), failures: failures.slice(0, FAILURES_SHOWN), unreachable };
}

/** The objects of every node, merged by id (a pulled copy is the same object on another node), largest first. */
export async function clusterObjects(nodes: readonly NodeStatus[], token: string): Promise<ClusterObjects> {
  const { answers, unreachable } = await askNodes<NodeObject[]>(nodes, token, '/api/objects');
  const byId = new Map<string, ClusterObject>();
  for (const [node, objects] of answers) {
    for (const object of objects) {
      const id = String(object.id);
      const holders = object.holders.map((holder) => ({ node: node.nodeId, pid: Number(holder.pid), kind: holder.kind, refs: Number(holder.refs) }));
      const known = byId.get(id);
      if (known) {
        known.nodes.push(node.nodeId);
        known.holders.push(...holders);
        continue;
      }
      byId.set(id, {
        id,
        size: Number(object.size) || 0,
        state: object.state,
        inline: object.inline === true,
        spilled: object.spilled === true,
        holds: Number(object.holds) || 0,
        names: object.names.map(String),
        nodes: [node.nodeId],
        holders,
      });
    }
  }
  return { objects: [...byId.values()].sort((a, b) => b.size - a.size || a.id.localeCompare(b.id)), unreachable };
}

/** One event of a Chrome trace (the Trace Event Format's `X` complete events and `M` metadata). */
export interface TraceEvent {
  readonly ph: 'X' | 'M';
  readonly name: string;
  readonly cat?: string;
  /** Microseconds since the epoch, and the span's length in microseconds. */
  readonly ts: number;
  readonly dur?: number;
  /** A node (numbered from 1), and a worker's pid on it (0: the node's pulls). */
  readonly pid: number;
  readonly tid: number;
  readonly args: Readonly<Record<string, unknown>>;
}

/** The cluster's timeline as a Chrome trace (`/api/timeline` on the head, `shoal timeline`). */
export interface ClusterTimeline {
  readonly traceEvents: TraceEvent[];
  readonly displayTimeUnit: 'ms';
  readonly otherData: { readonly tasks: number; readonly pulls: number; readonly nodes: number; readonly unreachable: Unreachable };
}

/**
 * The task runs and pulls of every node that ended since `sinceEpochMs`, as a Chrome trace that
 * chrome://tracing and ui.perfetto.dev open: a process per node, a thread per worker process with
 * one span per task run, and a "pulls" thread of the node's pulls from other nodes.
 */
export async function clusterTimeline(nodes: readonly NodeStatus[], token: string, sinceEpochMs: number): Promise<ClusterTimeline> {
  const { answers, unreachable } = await askNodes<TimelineSpan[]>(nodes, token, `/api/timeline?since=${encodeURIComponent(String(sinceEpochMs))}`);
  answers.sort(([a], [b]) => a.nodeId.localeCompare(b.nodeId));
  const traceEvents: TraceEvent[] = [];
  let tasks = 0;
  let pulls = 0;
  answers.forEach(([node, spans], index) => {
    const pid = index + 1;
    const meta = (name: string, tid: number, label: string) => traceEvents.push({ ph: 'M', name, ts: 0, pid, tid, args: { name: label } });
    meta('process_name', 0, `node ${node.nodeId} (${node.hostname})`);
    meta('thread_name', 0, 'pulls');
    const workers = new Set<number>();
    // What a node says is data: names and ids stay strings, times numbers.
    for (const span of Array.isArray(spans) ? spans : []) {
      const start = Number(span.start);
      const duration = Number(span.duration);
      if (!Number.isFinite(start) || !Number.isFinite(duration)) continue;
      const pull = span.kind === 'pull';
      const tid = pull ? 0 : Math.trunc(Number(span.pid)) || 0;
      if (!pull && !workers.has(tid)) {
        workers.add(tid);
        meta('thread_name', tid, `worker ${tid}`);
      }
      if (pull) pulls += 1;
      else tasks += 1;
      const args = pull ? { object: String(span.id), bytes: Number(span.bytes) || 0, from: String(span.from) } : { returnId: String(span.id), failed: span.failed === true };
      traceEvents.push({ ph: 'X', name: String(span.name), cat: pull ? 'pull' : span.failed === true ? 'task,failed' : 'task', ts: Math.round(start * 1000), dur: Math.max(1, Math.round(duration * 1000)), pid, tid, args });
    }
  });
  return { traceEvents, displayTimeUnit: 'ms', otherData: { tasks, pulls, nodes: answers.length, unreachable } };
}

/** A node's log as the head gives it (`/api/logs?node=` on the head, `shoal logs --node`). */
export interface ClusterNodeLog extends NodeLog {
  readonly node: string;
  readonly hostname: string;
}

/**
 * The log of the member whose node id or host name is `which`, asked of its data port with the
 * query `search` (`after=` / `lines=`, see `/api/logs` there). Undefined: no such member; a
 * string: why it did not answer.
 */
export async function clusterNodeLog(nodes: readonly NodeStatus[], token: string, which: string, search: URLSearchParams): Promise<ClusterNodeLog | string | undefined> {
  const node = nodes.find((member) => member.nodeId === which) ?? nodes.find((member) => member.hostname === which);
  if (!node) return undefined;
  const query = new URLSearchParams();
  for (const key of ['after', 'lines']) if (search.has(key)) query.set(key, search.get(key)!);
  const { answers, unreachable } = await askNodes<NodeLog>([node], token, `/api/logs?${query}`);
  const answer = answers[0]?.[1];
  if (!answer) return unreachable[0]?.reason ?? 'no answer';
  const lines = Array.isArray(answer.lines) ? answer.lines.map(String) : [];
  return { node: node.nodeId, hostname: node.hostname, file: typeof answer.file === 'string' ? answer.file : null, lines, end: Number(answer.end) || 0 };
}
