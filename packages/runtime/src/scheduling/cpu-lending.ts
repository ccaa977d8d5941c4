import type { Resources } from './resources.js';
import type { WorkerSlot } from './worker-slot.js';

type Lender = Pick<WorkerSlot, 'blockedRequests' | 'lease'>;

/*
 * A worker whose running task waits on objects that are not ready lends its lease's CPUs back,
 * so other tasks (typically the children it waits for) can run; the CPUs are taken back when its
 * last such request is answered. `available.CPU` may go negative meanwhile: a short
 * oversubscription, as in Ray. These three functions are the only place that lends.
 */

/** The worker's running task started waiting; returns true if this lent its CPUs (its first such request). */
export function lend(available: Resources, worker: Lender): boolean {
  if (worker.blockedRequests++ > 0 || !worker.lease) return false;
  available.CPU = (available.CPU ?? 0) + (worker.lease.CPU ?? 0);
  return true;
}

/** One waiting request of the worker's running task was answered: the last takes the CPUs back. */
export function unblock(available: Resources, worker: Lender): void {
  if (worker.blockedRequests === 0) return;
  if (--worker.blockedRequests === 0) available.CPU = (available.CPU ?? 0) - (worker.lease?.CPU ?? 0);
}

/** The worker's running task ended (or stopped waiting for good): take back whatever it lent. */
export function endLending(available: Resources, worker: Lender): void {
  if (worker.blockedRequests > 0 && worker.lease) available.CPU = (available.CPU ?? 0) - (worker.lease.CPU ?? 0);
  worker.blockedRequests = 0;
}
