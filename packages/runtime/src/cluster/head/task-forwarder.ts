import { NodeDiedError, toWireFailure, type ClusterResult, type ClusterTask } from '@shoal/protocol';
import type { Logger } from '../../log.js';
import { demandOf } from '../../scheduling/resources.js';
import type { Membership } from './membership.js';
import type { ObjectDirectory } from './object-directory.js';
import { placeTask, type Placement } from './placement-policy.js';

/** A task the head sent to a node other than its submitter's. */
interface Forwarded {
  readonly task: ClusterTask;
  readonly origin: string;
  readonly target: string;
  /** Nodes it was sent to that died under it. */
  readonly lost: number;
  /** The `seq` of the run sent to `target`, which its `accepted` must name. */
  readonly seq: number;
  /** Nodes it was sent to that did not acknowledge it in time: it is not sent there again. */
  readonly avoid: readonly string[];
  /** Until `target` acknowledges the run: then places it again elsewhere. */
  timer: NodeJS.Timeout | undefined;
  /** It outlived an ack timeout with no other node to go to (logged once). */
  waited: boolean;
}

/** How long a node has to acknowledge a run, unless the head is told otherwise. */
export const RUN_ACK_TIMEOUT_MS = 5000;

/**
 * The tasks nodes spill to the head, from placement to result: it asks the placement policy where
 * each goes and sends it there (`run`, with where to fetch its arguments), declines it or fails
 * it at its submitter; relays the result back; forwards cancels; and when a node dies, places its
 * tasks again (up to their `maxRetries`) and cancels the tasks it had submitted. A node that does
 * not acknowledge a run (`accepted`) within `runAckTimeoutMs` is told to drop it and the run is
 * placed elsewhere, if another node can take it (else the head keeps waiting for it); only the node the head last sent it to may then acknowledge or finish it (any
 * other is answered with `cancel`), so it cannot run, or finish, twice.
 *
 * @example
 * ```ts
 * const forwarder = new TaskForwarder(membership, directory, logger);
 * forwarder.spilled('nodeA', message.task); // a run to some node, or a declined/result to nodeA
 * ```
 */
export class TaskForwarder {
  readonly #membership: Membership;
  readonly #directory: ObjectDirectory;
  readonly #logger: Logger;
  readonly #runAckTimeoutMs: number;
  /** By return id. */
  readonly #forwarded = new Map<string, Forwarded>();

  constructor(membership: Membership, directory: ObjectDirectory, logger: Logger, runAckTimeoutMs = RUN_ACK_TIMEOUT_MS) {
    this.#membership = membership;
    this.#directory = directory;
    this.#logger = logger;
    this.#runAckTimeoutMs = runAckTimeoutMs;
  }

  /** Member `origin` cannot start `task` now: the head places it. */
  spilled(origin: string, task: ClusterTask): void {
    this.#place(origin, task, false);
  }

  /** A task sent to `target` ended there: its submitter gets the result. */
  finished(target: string, returnId: string, result: ClusterResult): void {
    const forwarded = this.#forwarded.get(returnId);
    if (!forwarded || forwarded.target !== target) {
      // A node the task was taken from (it acknowledged too late): nobody wants its result.
      this.#membership.send(target, { type: 'cancel', returnId });
      return;
    }
    this.#forget(returnId);
    const holderUrl = this.#membership.dataUrl(target) ?? '';
    if (!this.#membership.send(forwarded.origin, { type: 'result', returnId, holder: target, holderUrl, result })) {
      // Its submitter is gone: nobody will pull the result.
      this.#membership.send(target, { type: 'cancel', returnId });
    }
  }

  /** Member `target` took run `seq` of task `returnId`; a node it no longer belongs to must drop it. */
  accepted(target: string, returnId: string, seq: number): void {
    const forwarded = this.#forwarded.get(returnId);
    if (forwarded?.target === target && forwarded.seq === seq) {
      clearTimeout(forwarded.timer);
      forwarded.timer = undefined;
      return;
    }
    this.#membership.send(target, { type: 'cancel', returnId });
  }

  /** The submitter `origin` gives up on a task: the node running it stops it. */
  cancelled(origin: string, returnId: string): void {
    const forwarded = this.#forwarded.get(returnId);
    if (forwarded?.origin !== origin) return;
    this.#forget(returnId);
    this.#membership.send(forwarded.target, { type: 'cancel', returnId });
  }

  /** Member `nodeId` left: tasks running there are placed again (or fail), tasks it submitted stop. */
  departed(nodeId: string): void {
    for (const [returnId, forwarded] of [...this.#forwarded]) {
      if (forwarded.origin === nodeId) {
        this.#forget(returnId);
        this.#membership.send(forwarded.target, { type: 'cancel', returnId });
        continue;
      }
      if (forwarded.target !== nodeId) continue;
      const lost = forwarded.lost + 1;
      const { task, origin } = forwarded;
      if (lost <= task.options.maxRetries) {
        clearTimeout(forwarded.timer);
        this.#forwarded.set(returnId, { ...forwarded, lost, timer: undefined });
        this.#logger.warn(
          { nodeId, task: task.fn.name, returnId, attempt: lost + 1 },
          `task ${task.fn.name} was running on ${nodeId}: placing it again (attempt ${lost + 1})`,
        );
        this.#place(origin, task, true, forwarded.avoid);
        continue;
      }
      this.#failAtOrigin(origin, returnId, new NodeDiedError(task.fn.name, { attempts: lost }));
    }
  }

  /** Stops waiting for acknowledgements (the head is closing). */
  close(): void {
    for (const forwarded of this.#forwarded.values()) clearTimeout(forwarded.timer);
  }

  /** How many tasks are out on other nodes now. */
  get size(): number {
    return this.#forwarded.size;
  }

  /** `retry`: the node it ran on died, so the submitter is a candidate like any other. */
  #place(origin: string, task: ClusterTask, retry: boolean, avoid: readonly string[] = []): void {
    this.#apply(origin, task, this.#decide(origin, task, retry, avoid), avoid);
  }

  #decide(origin: string, task: ClusterTask, retry: boolean, avoid: readonly string[]): Placement {
    const directory = this.#directory;
    return placeTask(
      { members: this.#membership.snapshot(), holds: (objectId, nodeId) => directory.holds(objectId, nodeId), dropped: this.#membership.dropped() },
      { task, origin, retry, avoid },
    );
  }

  #apply(origin: string, task: ClusterTask, decision: Placement, avoid: readonly string[]): void {
    switch (decision.kind) {
      case 'placed':
        this.#run(origin, task, decision.nodeId, avoid);
        return;
      case 'declined':
        // The submitter still has the task: it simply runs it itself.
        this.#forget(task.returnId);
        this.#membership.send(origin, { type: 'declined', returnId: task.returnId });
        return;
      case 'infeasible':
        this.#failAtOrigin(origin, task.returnId, decision.error);
        return;
    }
  }

  /** Sends `task` to run on `target`, with the nodes each of its fetched arguments is on. */
  #run(origin: string, task: ClusterTask, target: string, avoid: readonly string[]): void {
    const seq = this.#membership.recordRun(target, demandOf(task.options));
    const sources: Record<string, string[]> = {};
    for (const arg of task.args) {
      if ('ref' in arg && !arg.bytes) {
        const urls = this.#membership.dataUrls(this.#directory.holders(arg.ref));
        const ownerUrl = this.#membership.dataUrl(arg.owner);
        sources[arg.ref] = ownerUrl && !urls.includes(ownerUrl) ? [ownerUrl, ...urls] : urls;
      }
    }
    const lost = this.#forwarded.get(task.returnId)?.lost ?? 0;
    const timer = this.#ackTimer(task.returnId, seq);
    this.#forwarded.set(task.returnId, { task, origin, target, lost, seq, avoid, timer, waited: false });
    this.#membership.send(target, { type: 'run', seq, origin, task, sources });
  }

  #ackTimer(returnId: string, seq: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.#unacknowledged(returnId, seq), this.#runAckTimeoutMs);
    timer.unref();
    return timer;
  }

  /** `target` did not take the run in time (it swallowed it, or is stalled): it goes elsewhere. */
  #unacknowledged(returnId: string, seq: number): void {
    const forwarded = this.#forwarded.get(returnId);
    if (forwarded?.seq !== seq || forwarded.timer === undefined) return;
    const { task, origin, target } = forwarded;
    const avoid = [...forwarded.avoid, target];
    const decision = this.#decide(origin, task, forwarded.lost > 0, avoid);
    if (decision.kind === 'infeasible') {
      // No other node could take it: failing it would blame the task ("no node offers that")
      // for a node that is only slow, and cancelling would leave it nowhere. It stays with
      // `target`; if that node is dead, the heartbeat sweep drops it and departed() places the
      // run again or fails it as NodeUnresponsive/NodeDied.
      if (!forwarded.waited) {
        this.#logger.warn(
          { nodeId: target, task: task.fn.name, returnId, runAckTimeoutMs: this.#runAckTimeoutMs },
          `node ${target} did not acknowledge task ${task.fn.name} within ${this.#runAckTimeoutMs} ms, and no other node can run it: still waiting for it`,
        );
      }
      forwarded.waited = true;
      forwarded.timer = this.#ackTimer(returnId, seq);
      return;
    }
    forwarded.timer = undefined;
    this.#logger.warn(
      { nodeId: target, task: task.fn.name, returnId, runAckTimeoutMs: this.#runAckTimeoutMs },
      `node ${target} did not acknowledge task ${task.fn.name} within ${this.#runAckTimeoutMs} ms: placing it elsewhere`,
    );
    // In case it took the run after all: it must not run it beside the new placement.
    this.#membership.send(target, { type: 'cancel', returnId });
    this.#apply(origin, task, decision, avoid);
  }

  #forget(returnId: string): void {
    clearTimeout(this.#forwarded.get(returnId)?.timer);
    this.#forwarded.delete(returnId);
  }

  /** The task is over without running: its submitter gets the failure as its result. */
  #failAtOrigin(origin: string, returnId: string, error: Error): void {
    this.#forget(returnId);
    this.#membership.send(origin, { type: 'result', returnId, holder: '', holderUrl: '', result: { ok: false, failure: toWireFailure(error) } });
  }
}
