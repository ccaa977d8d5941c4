import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { WorkerSpawnError, type NodeToWorker, type WorkerToNode } from '@shoal/protocol';
import type { Connection } from '../transport/connection.js';
import type { Peer } from '../node/peer.js';
import type { Resources } from '../scheduling/resources.js';
import type { Task } from '../scheduling/task.js';
import type { WorkerSlot, WorkerState } from '../scheduling/worker-slot.js';
import { NODE_ENV_KEY, envKeyOf } from '../scheduling/runtime-env.js';
import type { ResolvedRuntimeEnv } from '../options.js';

// Resolved through the package's exports, not next to this file: the build bundles this module
// into a chunk elsewhere in dist/ (scripts/bundle-dist.mjs).
const WORKER_ENTRY = createRequire(import.meta.url).resolve('@shoal/runtime/process/worker');

export type { WorkerState } from '../scheduling/worker-slot.js';

/**
 * Variables a node's own process may have that carry the cluster token (SHOAL_TOKEN, and the
 * daemon's config, which includes it): a task runs any code it was sent, so workers never see them.
 */
const SECRET_VARIABLES = ['SHOAL_TOKEN', 'SHOAL_DAEMON_CONFIG'];

function withoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const name of SECRET_VARIABLES) delete copy[name];
  return copy;
}

/** Settings a worker process reads from its environment. */
export interface WorkerEnvironment {
  readonly socketPath: string;
  readonly sessionId: string;
  readonly sessionDirectory: string;
  readonly inlineThreshold: number;
  /** Whether the worker sends what it writes to stdout/stderr to the node (logToDriver), or writes it to the node's own. */
  readonly forwardOutput: boolean;
  /** The node's own runtimeEnv: every worker's, under a task's own. */
  readonly runtimeEnv?: ResolvedRuntimeEnv | undefined;
}

/** One worker process: the child, its connection once it said ready, and what it runs. */
export class WorkerHandle implements Peer, WorkerSlot {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<void>;
  /** The runtimeEnv it was started for: NODE_ENV_KEY for the node's own. */
  envKey = NODE_ENV_KEY;
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
  /** Of those, a streaming task's waits for its consumer. */
  pausedStreams = 0;
  /** Names this worker watches. */
  readonly watching = new Set<string>();
  readonly pendingHolds = new Set<string>();
  readonly heldAhead = new Set<string>();
  readonly remote = false;
  /** Set while this is an extra worker with nothing to do: it stops when it fires. */
  idleTimer: NodeJS.Timeout | undefined;
  /** Resolves once the worker said ready on its connection, or died. */
  readonly connected: Promise<void>;
  #connected!: () => void;

  /**
   * Starts a worker process that will connect to the node described by `environment`, with the
   * task environment `runtimeEnv` over the node's own (its variables added, its directory).
   * @throws WorkerSpawnError when the process could not be started.
   */
  static spawn(
    environment: WorkerEnvironment,
    onExit: (worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null) => void,
    runtimeEnv?: ResolvedRuntimeEnv,
  ): WorkerHandle {
    const cwd = runtimeEnv?.cwd ?? environment.runtimeEnv?.cwd;
    const child = spawn(process.execPath, [WORKER_ENTRY], {
      stdio: ['ignore', 'inherit', 'inherit'],
      ...(cwd === undefined ? {} : { cwd }),
      env: {
        ...withoutSecrets(process.env),
        ...environment.runtimeEnv?.env,
        ...runtimeEnv?.env,
        SHOAL_NODE_SOCKET: environment.socketPath,
        SHOAL_SESSION_ID: environment.sessionId,
        SHOAL_SESSION_DIR: environment.sessionDirectory,
        SHOAL_INLINE_THRESHOLD: String(environment.inlineThreshold),
        SHOAL_NODE_PID: String(process.pid),
        ...(environment.forwardOutput ? { SHOAL_FORWARD_OUTPUT: '1' } : {}),
      },
    });
    const worker = new WorkerHandle(child, onExit);
    worker.envKey = envKeyOf(runtimeEnv);
    return worker;
  }

  /** Takes over `child`, a worker process just started; `onExit` runs once when it exits. */
  constructor(child: ChildProcess, onExit: (worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null) => void) {
    this.child = child;
    if (child.pid === undefined) {
      // The spawn failed (EAGAIN, ENOMEM): its 'error' comes later, and must find a listener or
      // it would end this process; it is the cause of what the caller gets now.
      const error = new WorkerSpawnError();
      child.once('error', (cause) => (error.cause ??= cause));
      throw error;
    }
    this.pid = child.pid;
    this.connected = new Promise((resolve) => (this.#connected = resolve));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.state = 'dead';
        this.#connected();
        onExit(this, code, signal);
        resolve();
      });
    });
    // A running worker's 'error' (a failed kill, say) is followed by 'exit', which cleans up.
    this.child.once('error', () => {});
  }

  /** The worker process said ready on `connection`: it takes tasks from now on. */
  claim(connection: Connection<WorkerToNode, NodeToWorker>): void {
    this.connection = connection;
    this.state = 'idle';
    this.#connected();
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
