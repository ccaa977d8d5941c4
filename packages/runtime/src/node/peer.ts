import type { NodeToWorker, WorkerToNode } from '@shoal/protocol';
import type { Connection } from '../transport/connection.js';

/**
 * What the node keeps for every process connected to it: a worker it spawned, or an attached
 * client. Holds, names and requests work the same for both; only workers get tasks (the worker's
 * scheduling state is in WorkerSlot, see scheduling/worker-slot.ts).
 */
export interface Peer {
  readonly pid: number;
  connection: Connection<WorkerToNode, NodeToWorker> | undefined;
  /** Refs this peer holds, by id, with counts: released if it goes away. */
  readonly holds: Map<string, number>;
  /** Hashes of the functions this peer already has (it submits tasks with their source once). */
  readonly functions: Set<string>;
  /** Names this peer watches. */
  readonly watching: Set<string>;
  /**
   * Ids it holds refs to that this node did not have when it said so (made by other nodes):
   * counted as holds if this node fetches them.
   */
  readonly pendingHolds: Set<string>;
  /** Ids held for it when its get made this node fetch them, before its own `refs` hold came. */
  readonly heldAhead: Set<string>;
  /** A program on another machine (over WebSocket): it cannot map this machine's segments. */
  readonly remote: boolean;
  send(message: NodeToWorker): void;
}

/** A process attached to the node with `init({ address })`: it stores and gets, never runs tasks. */
export class ClientHandle implements Peer {
  readonly pid: number;
  connection: Connection<WorkerToNode, NodeToWorker> | undefined;
  readonly holds = new Map<string, number>();
  readonly functions = new Set<string>();
  readonly watching = new Set<string>();
  readonly pendingHolds = new Set<string>();
  readonly heldAhead = new Set<string>();
  readonly remote: boolean;
  /** Whether it prints its tasks' output (its `logToDriver`); if not, the output stays with the node. */
  readonly wantsOutput: boolean;

  constructor(pid: number, connection: Connection<WorkerToNode, NodeToWorker>, remote = false, wantsOutput = true) {
    this.pid = pid;
    this.connection = connection;
    this.remote = remote;
    this.wantsOutput = wantsOutput;
  }

  send(message: NodeToWorker): void {
    this.connection?.send(message);
  }
}
