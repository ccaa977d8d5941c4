// Where the head sends a task its submitter could not start: a pure function of the membership
// and object directory as they are now. The task forwarder applies the decision; nothing here
// sends, logs or throws for lack of capacity.
import { InfeasibleTaskError, NodeDiedError, NodeUnresponsiveError, type ClusterTask } from '@shoal/protocol';
import { acquire, demandOf, describeResources, fits, type Resources } from '../../scheduling/resources.js';

/** A member of the cluster as placement sees it. */
export interface MemberSnapshot {
  readonly nodeId: string;
  readonly hostname: string;
  /** Everything the node has (its report's `resources`). */
  readonly resources: Readonly<Resources>;
  /** What it had free when it last reported. */
  readonly available: Readonly<Resources>;
  /** Runs sent to it that its last report did not account for yet: they take room too. */
  readonly sentSinceReport: readonly { readonly demand: Readonly<Resources> }[];
  /** Tasks waiting on it when it last reported. */
  readonly queuedTasks: number;
}

/** A node the head dropped for missed heartbeats, as placement remembers it. */
export interface DroppedSnapshot {
  readonly nodeId: string;
  readonly hostname: string;
  readonly resources: Readonly<Resources>;
  /** The silence after which it was dropped. */
  readonly heartbeatTimeoutMs: number;
}

/** The state placement decides over. */
export interface PlacementSnapshot {
  /** The members in the order they joined: of equally good nodes, the earlier one wins. */
  readonly members: readonly MemberSnapshot[];
  /** Whether `nodeId` holds a copy of object `objectId` (the object directory). */
  readonly holds: (objectId: string, nodeId: string) => boolean;
  /** Nodes recently dropped for missed heartbeats (not members now). @default [] */
  readonly dropped?: readonly DroppedSnapshot[];
}

/** A task to place. */
export interface PlacementRequest {
  readonly task: ClusterTask;
  /** The node that submitted it; it keeps the task until told where it runs. */
  readonly origin: string;
  /** The node it was sent to died: the origin now competes for it like any other node. */
  readonly retry: boolean;
  /** Nodes not to send it to (they did not acknowledge it when it was sent to them). */
  readonly avoid?: readonly string[];
}

/**
 * What to do with a task:
 * - `placed`: send it to `nodeId` (never the origin), which has room, or else is the least
 *   loaded node that could ever run it (it queues there);
 * - `declined`: no other node has room now and the origin could run it: the origin keeps it
 *   (the "wait" of a scheduling policy; the head tells it with a `declined` message);
 * - `infeasible`: no node of the cluster could run it now. `error` is a NodeUnresponsiveError
 *   when a node dropped for missed heartbeats could have, a NodeDiedError on a retry (the node that
 *   could run it is the one that left), else an InfeasibleTaskError: what the submitter's caller gets.
 */
export type Placement =
  | { readonly kind: 'placed'; readonly nodeId: string }
  | { readonly kind: 'declined' }
  | { readonly kind: 'infeasible'; readonly error: InfeasibleTaskError | NodeDiedError | NodeUnresponsiveError };

/** What a member may still take now: its last report minus what was sent to it since. */
export function roomOf(member: Pick<MemberSnapshot, 'available' | 'sentSinceReport'>): Resources {
  const room = { ...member.available };
  for (const { demand } of member.sentSinceReport) acquire(room, demand);
  return room;
}

/** Bytes of the task's ref arguments that `nodeId` already has (it owns or holds a copy). */
export function argumentBytesOn(task: ClusterTask, nodeId: string, holds: PlacementSnapshot['holds']): number {
  let bytes = 0;
  for (const arg of task.args) {
    if ('ref' in arg && (arg.owner === nodeId || holds(arg.ref, nodeId))) bytes += arg.size;
  }
  return bytes;
}

/**
 * Places a task (see {@link Placement}): on the node with room that holds most of its argument
 * bytes, ties going to the most free CPUs; with no room anywhere, back to the origin if it could
 * ever run it, else to the least loaded node that could; else it is infeasible.
 *
 * @example
 * ```ts
 * const decision = placeTask({ members, holds: (id, node) => directory.holds(id, node) }, { task, origin, retry: false });
 * if (decision.kind === 'placed') send(decision.nodeId, task);
 * ```
 */
export function placeTask(snapshot: PlacementSnapshot, request: PlacementRequest): Placement {
  const { task, origin, retry } = request;
  const demand = demandOf(task.options);
  const avoided = (member: MemberSnapshot) => request.avoid?.includes(member.nodeId) ?? false;
  let best: { nodeId: string; bytes: number; cpu: number } | undefined;
  for (const member of snapshot.members) {
    if ((member.nodeId === origin && !retry) || avoided(member)) continue;
    const room = roomOf(member);
    if (!fits(demand, room)) continue;
    const bytes = argumentBytesOn(task, member.nodeId, snapshot.holds);
    const cpu = room.CPU ?? 0;
    if (!best || bytes > best.bytes || (bytes === best.bytes && cpu > best.cpu)) best = { nodeId: member.nodeId, bytes, cpu };
  }
  if (best) return best.nodeId === origin ? { kind: 'declined' } : { kind: 'placed', nodeId: best.nodeId };

  const originMember = snapshot.members.find((member) => member.nodeId === origin);
  if (originMember && fits(demand, originMember.resources)) return { kind: 'declined' };

  // Nobody has room: queue it where the fewest tasks wait, among the nodes that could run it.
  let fallback: { nodeId: string; queued: number } | undefined;
  for (const member of snapshot.members) {
    if (!fits(demand, member.resources) || avoided(member)) continue;
    const queued = member.queuedTasks + member.sentSinceReport.length;
    if (!fallback || queued < fallback.queued) fallback = { nodeId: member.nodeId, queued };
  }
  if (fallback) return { kind: 'placed', nodeId: fallback.nodeId };

  // A node went silent, not a task that can never run: say so.
  const silent = (snapshot.dropped ?? []).filter((dropped) => fits(demand, dropped.resources));
  if (silent.length > 0) {
    return {
      kind: 'infeasible',
      error: new NodeUnresponsiveError(task.fn.name, {
        demand: describeResources(demand),
        nodes: silent.map((dropped) => `${dropped.hostname} (${dropped.nodeId})`),
        heartbeatTimeoutMs: Math.max(...silent.map((dropped) => dropped.heartbeatTimeoutMs)),
      }),
    };
  }
  if (retry) {
    // The node that could run it left, and no other can: that is the node's death, not a task
    // that can never run.
    return { kind: 'infeasible', error: new NodeDiedError(task.fn.name, { demand: describeResources(demand) }) };
  }
  const offers = snapshot.members.map((member) => `${member.hostname} (${member.nodeId}) offers ${describeResources(member.resources)}`);
  return {
    kind: 'infeasible',
    error: new InfeasibleTaskError(
      task.fn.name,
      `it needs ${describeResources(demand)}, and no node of the cluster offers that: ${offers.join('; ') || 'no nodes'}. ` +
        "Start a node that does (`shoal start --address ... --num-cpus N --resources '{...}'`).",
    ),
  };
}
