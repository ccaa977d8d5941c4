import type { FunctionTally, NodeStatus, TaskFailure, TaskSummary } from '@shoal/protocol';

/** A failed task, with the node it failed on. */
export type ClusterFailure = TaskFailure & { readonly node: string };

/** The cluster's tasks as the dashboard shows them (`/api/tasks` on the head). */
export interface ClusterTasks {
  /** Each function's tasks across the cluster (each node counts those submitted to it and run on it). */
  readonly functions: FunctionTally[];
  /** The last failures, newest first. */
  readonly failures: ClusterFailure[];
  /** Nodes that did not answer, and why. */
  readonly unreachable: { readonly node: string; readonly reason: string }[];
}

/** How long the head waits for a node's tasks. */
const ASK_TIMEOUT_MS = 2000;
const FAILURES_SHOWN = 20;
/** A node's answer is its tallies and 20 failures of at most 4 KiB texts each: far below this. */
const MAX_ANSWER_CHARS = 4 * 1024 * 1024;
const COUNTS = ['submitted', 'started', 'finished', 'failed', 'runs', 'runSeconds'] as const;

/**
 * Asks every member's data port for its tasks (`/api/tasks`, with the cluster token) and merges
 * them: counts summed by function name, failures newest first. A node that does not answer in 2 s
 * is listed in `unreachable`; the others are still shown.
 */
export async function clusterTasks(nodes: readonly NodeStatus[], token: string): Promise<ClusterTasks> {
  const byName = new Map<string, FunctionTally>();
  const failures: ClusterFailure[] = [];
  const unreachable: { node: string; reason: string }[] = [];
  await Promise.all(
    nodes.map(async (node) => {
      try {
        const response = await fetch(`${node.dataUrl.replace(/^ws/, 'http')}/api/tasks`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(ASK_TIMEOUT_MS),
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const text = await response.text();
        if (text.length > MAX_ANSWER_CHARS) throw new Error(`answered ${text.length} characters, more than ${MAX_ANSWER_CHARS}`);
        const summary = JSON.parse(text) as TaskSummary;
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
      } catch (error) {
        unreachable.push({ node: node.nodeId, reason: (error as Error).message });
      }
    }),
  );
  failures.sort((a, b) => b.at - a.at);
  return { functions: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)), failures: failures.slice(0, FAILURES_SHOWN), unreachable };
}
