import type { Task } from '../task.js';
import type { WorkerSlot } from '../worker-slot.js';

/** Whether a task sits in a worker's queue, not started and not already being taken back. */
const stealable = (task: Task): boolean => task.state === 'queued' && !task.recalling;

/**
 * A worker is idle and nothing is ready: which queued tasks to take back so they start on it
 * instead of waiting behind a slow running one — half (rounded up) of the longest queue, from
 * its end, among workers whose queued tasks `canStart` (an idle worker could start them now).
 * Undefined when no worker has such a task waiting.
 */
export function stealFrom<W extends Pick<WorkerSlot, 'inflight'>>(
  workers: Iterable<W>,
  canStart: (task: Task) => boolean = () => true,
): { worker: W; tasks: Task[] } | undefined {
  let busiest: W | undefined;
  let waiting = 0;
  for (const worker of workers) {
    // A worker's queued tasks all demand its lease: the first says whether any could start now.
    const first = worker.inflight.find(stealable);
    if (!first || !canStart(first)) continue;
    const queued = worker.inflight.filter(stealable).length;
    if (queued > waiting) {
      busiest = worker;
      waiting = queued;
    }
  }
  if (!busiest) return undefined;
  return { worker: busiest, tasks: busiest.inflight.filter(stealable).slice(-Math.ceil(waiting / 2)) };
}
