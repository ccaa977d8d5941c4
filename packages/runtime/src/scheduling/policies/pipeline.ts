import { sameDemand, type Resources } from '../resources.js';
import type { WorkerSlot } from '../worker-slot.js';

/** Tasks a busy worker may have queued behind its running one (saves a round trip each). */
export const PIPELINE_DEPTH = 8;

/**
 * The same with a deep backlog ({@link DEEP_BACKLOG} ready tasks or more): every batch of
 * `execute` messages to a worker, and every write of the node's socket, carries more tasks (at a
 * million queued no-op tasks, the node's socket writes took a fifth of its time at depth 8; at
 * 32, 9,476 writes for 300,000 tasks, at 128, 2,472). A worker runs its queue of no-op tasks in
 * one turn and answers in one write, so its batches are as long as its queue. The deeper queues
 * take only tasks that would wait in the ready queue anyway, behind more.
 */
export const DEEP_PIPELINE_DEPTH = 128;

/** Ready tasks from which a busy worker's queue may be {@link DEEP_PIPELINE_DEPTH} long. */
export const DEEP_BACKLOG = 1024;

/** How many tasks a busy worker may have queued when `backlog` tasks are ready. */
export function pipelineDepth(backlog: number): number {
  return backlog >= DEEP_BACKLOG ? DEEP_PIPELINE_DEPTH : PIPELINE_DEPTH;
}

/**
 * Where to queue a ready task behind a running one when every worker is busy: the least loaded
 * busy worker whose lease has the same demand, that is not waiting on objects and has room in its
 * queue — so a worker never waits a round trip between two small tasks. Tasks with a timeout are
 * never queued (their clock starts when they start): undefined.
 */
export function pipelineTarget<W extends Pick<WorkerSlot, 'state' | 'blockedRequests' | 'inflight' | 'lease'>>(
  task: { readonly demand: Readonly<Resources>; readonly options: { readonly timeoutMs: number | null } },
  workers: Iterable<W>,
  depth = PIPELINE_DEPTH,
): W | undefined {
  if (task.options.timeoutMs !== null) return undefined;
  let best: W | undefined;
  for (const worker of workers) {
    if (worker.state !== 'busy' || worker.blockedRequests > 0 || worker.inflight.length >= depth) continue;
    if (!sameDemand(worker.lease, task.demand)) continue;
    if (!best || worker.inflight.length < best.inflight.length) best = worker;
  }
  return best;
}
