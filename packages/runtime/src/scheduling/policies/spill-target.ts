import { acquire, fits, type Resources } from '../resources.js';

/** A node of the cluster as far as spilling cares: what it has free, by the head's last view. */
export interface PeerRoom {
  readonly nodeId: string;
  readonly available: Readonly<Resources>;
}

/**
 * Where a task that cannot start on this node could go: `placed` on a peer (with what that peer
 * has left once the task is counted in), or `wait` here because no peer has room.
 */
export type SpillTarget =
  | { readonly kind: 'placed'; readonly nodeId: string; readonly available: Resources }
  | { readonly kind: 'wait' };

/**
 * The first peer, in the view's order, with room for `demand`. The head makes the actual
 * placement; this only decides whether spilling is worth asking for, so first fit is enough.
 * Pure: the caller records the returned `available` as taken until the head's next view.
 *
 * @example
 * ```ts
 * spillTarget({ CPU: 1 }, [{ nodeId: 'a', available: { CPU: 0 } }, { nodeId: 'b', available: { CPU: 2 } }]);
 * // → { kind: 'placed', nodeId: 'b', available: { CPU: 1 } }
 * ```
 */
export function spillTarget(demand: Readonly<Resources>, peers: Iterable<PeerRoom>): SpillTarget {
  for (const peer of peers) {
    if (!fits(demand, peer.available)) continue;
    const available = { ...peer.available };
    acquire(available, demand);
    return { kind: 'placed', nodeId: peer.nodeId, available };
  }
  return { kind: 'wait' };
}
