import { sameDemand, type Resources } from '../resources.js';
import type { WorkerSlot } from '../worker-slot.js';

/** Tasks a busy worker may have queued behind its running one (saves a round trip each). */
export const PIPELINE_DEPTH = 8;

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
