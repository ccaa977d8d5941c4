import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { NodeToWorker, WorkerToNode } from '@shoal/protocol';
import type { Connection } from '../transport/connection.js';
import type { Peer } from '../node/client-handle.js';
import type { Resources, Task } from '../scheduling/task.js';

const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/** Lifecycle of a worker process as its node sees it. */
export type WorkerState = 'starting' | 'idle' | 'busy' | 'dead';

/** Settings a worker process reads from its environment. */
export interface WorkerEnvironment {
  readonly socketPath: string;
  readonly sessionId: string;
  readonly sessionDirectory: string;
  readonly inlineThreshold: number;
}

/** One worker process: the child, its connection once it said ready, and what it runs. */
export class WorkerHandle implements Peer {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<void>;
  connection: Connection<WorkerToNode, NodeToWorker> | undefined;
  state: WorkerState = 'starting';
  /** Tasks sent to this worker, in order: the first is running, the others wait behind it. */
  readonly inflight: Task[] = [];
  /** Resources held for this worker while it has tasks (all its queued tasks demand the same). */
  lease: Readonly<Resources> | undefined;
  /** Hashes of the functions this worker already has. */
  readonly functions = new Set<string>();
  /** Refs this worker holds, by id, with counts: released if it dies. */
  readonly holds = new Map<string, number>();
  /** Requests from the running task waiting on objects that are not ready (its CPU is lent). */
  blockedRequests = 0;
  /** Names this worker watches. */
  readonly watching = new Set<string>();
  readonly pendingHolds = new Set<string>();
  readonly heldAhead = new Set<string>();
  idleTimer: NodeJS.Timeout | undefined;

  constructor(environment: WorkerEnvironment, onExit: (worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null) => void) {
    this.child = spawn(process.execPath, [WORKER_ENTRY], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        SHOAL_NODE_SOCKET: environment.socketPath,
        SHOAL_SESSION_ID: environment.sessionId,
        SHOAL_SESSION_DIR: environment.sessionDirectory,
        SHOAL_INLINE_THRESHOLD: String(environment.inlineThreshold),
        SHOAL_NODE_PID: String(process.pid),
      },
    });
    if (this.child.pid === undefined) throw new Error('Could not start a worker process (spawn failed).');
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.state = 'dead';
        onExit(this, code, signal);
        resolve();
      });
    });
    this.child.once('error', () => {
      // 'exit' follows (or the spawn failed and exit never comes: treat as dead).
      if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid === undefined) {
        this.state = 'dead';
      }
    });
  }

  /** Whether this worker (its process and connection) keeps the node's process alive. */
  keepAlive(alive: boolean): void {
    if (alive) {
      this.child.ref();
      this.connection?.socket.ref();
    } else {
      this.child.unref();
      this.connection?.socket.unref();
    }
  }

  send(message: NodeToWorker): void {
    this.connection?.send(message);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
