import type { PeerView as PeerReport } from '@shoal/protocol';
import { spillTarget } from '../../scheduling/policies/spill-target.js';
import type { Resources } from '../../scheduling/resources.js';

/**
 * A node's picture of the other nodes of its cluster, as of the head's last `view`: where to
 * pull their objects from, and whether any of them has room for a task this node cannot start
 * (room it reserves until the next view, so a burst of tasks does not all spill to one peer).
 *
 * @example
 * ```ts
 * const peers = new PeerView();
 * const left = peers.update(message.nodes); // nodes no longer in the cluster
 * if (peers.reserve({ CPU: 1 })) spill(task);
 * ```
 */
export class PeerView {
  #peers = new Map<string, PeerReport>();
  /** The head declined a spill since its last view: do not spill again until the next. */
  #spillBlocked = false;

  /** Ids of the other nodes, as of the head's last view. */
  get nodeIds(): string[] {
    return [...this.#peers.keys()];
  }

  /** Takes the head's new view; returns the peers of the old one that left. */
  update(nodes: readonly PeerReport[]): PeerReport[] {
    const next = new Map(nodes.map((peer) => [peer.nodeId, peer]));
    const left = [...this.#peers.values()].filter((peer) => !next.has(peer.nodeId));
    this.#peers = next;
    this.#spillBlocked = false;
    return left;
  }

  /** The data address of node `nodeId`, as a list of sources (empty when it is not in the view). */
  sourcesOf(nodeId: string): string[] {
    const url = this.#peers.get(nodeId)?.dataUrl;
    return url ? [url] : [];
  }

  /** Whether another node has room for `demand`; if so that room is counted as taken until the next view. */
  reserve(demand: Readonly<Resources>): boolean {
    if (this.#spillBlocked) return false;
    const target = spillTarget(demand, this.#peers.values());
    if (target.kind !== 'placed') return false;
    this.#peers.set(target.nodeId, { ...this.#peers.get(target.nodeId)!, available: target.available });
    return true;
  }

  /** The head declined a spill: none until its next view. */
  blockSpills(): void {
    this.#spillBlocked = true;
  }
}
