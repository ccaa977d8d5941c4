import { shortfall, type Resources } from '../resources.js';

/** The result of placing a task on a node's resources. */
export type Placement = { readonly kind: 'placed' } | { readonly kind: 'wait' } | { readonly kind: 'infeasible'; readonly reason: string };

/**
 * Whether `demand` can run now on `available`, later (once resources free up), or never on a node
 * offering `total`. A pure function over snapshots; it never throws for lack of capacity.
 */
// The answers without a reason are shared: placing runs for every task submitted and at every
// pass over the ready queue.
const PLACED: Placement = Object.freeze({ kind: 'placed' });
const WAIT: Placement = Object.freeze({ kind: 'wait' });

export function place(demand: Readonly<Resources>, available: Readonly<Resources>, total: Readonly<Resources>): Placement {
  const missing = shortfall(demand, total);
  if (missing) {
    const what = missing.name === 'CPU' ? `${missing.amount} CPUs` : `${missing.amount} of resource "${missing.name}"`;
    return { kind: 'infeasible', reason: `it needs ${what}, and this node offers ${missing.offered}` };
  }
  return shortfall(demand, available) ? WAIT : PLACED;
}
