import { isDeepStrictEqual } from 'node:util';
import { ShoalError } from '@shoal/protocol';
import { NodeManager, currentRuntime, setCurrentRuntime, type NodeOptions, type Runtime } from '@shoal/runtime';
import type { StoreOptions } from '@shoal/store';

/** Options of {@link init}: the node's resources and its object store. */
export interface InitOptions extends StoreOptions, NodeOptions {}

/** The running Shoal session of this process, as returned by {@link init}. */
export interface ShoalSession {
  /** The session id (names `/dev/shm/shoal-<sessionId>/`). */
  readonly sessionId: string;
  /** The session's segment directory. */
  readonly directory: string;
  /** Pids of the worker processes alive now. */
  workerPids(): number[];
  /** Stops the session (same as {@link shutdown}). */
  shutdown(): Promise<void>;
}

interface Embedded {
  readonly node: NodeManager;
  readonly options: InitOptions;
  readonly session: ShoalSession;
}

let embedded: Embedded | undefined;

function start(options: InitOptions): Embedded {
  const node = new NodeManager(options);
  setCurrentRuntime(node);
  const session: ShoalSession = {
    sessionId: node.store.sessionId,
    directory: node.store.directory,
    workerPids: () => node.workerPids(),
    shutdown,
  };
  return { node, options, session };
}

/**
 * Starts Shoal in this process: the embedded default, a one-node cluster inside this process
 * (object store, scheduler, and one worker process per CPU, started now). Using `store` or a
 * remote function before `init()` starts it with the defaults. Resolves once the workers are up.
 *
 * Calling `init()` again with the same options returns the running session; with different
 * options it is an error (call {@link shutdown} first).
 *
 * @example
 * ```ts
 * import { init, remote, shutdown } from 'shoal';
 * await init({ numCpus: 4 });
 * console.log(await remote((a: number, b: number) => a + b)(1, 2)); // 3
 * await shutdown();
 * ```
 */
export async function init(options: InitOptions = {}): Promise<ShoalSession> {
  if (currentRuntime()?.kind === 'worker') {
    throw new ShoalError('ERR_IN_WORKER', 'init() cannot be called inside a task: the task already runs in a Shoal worker.');
  }
  if (embedded) {
    if (!isDeepStrictEqual(embedded.options, options)) {
      throw new ShoalError(
        'ERR_ALREADY_INITIALIZED',
        'Shoal is already running in this process with other options (init() was called before, or Shoal ' +
          'was used, which starts it with the defaults). Call shutdown() before init() with new options.',
      );
    }
  } else {
    embedded = start(options);
  }
  await embedded.node.ready();
  return embedded.session;
}

/**
 * Stops Shoal in this process: pending tasks fail, worker processes exit, every object is freed
 * and the session directory is removed. Process exit does the same. Idempotent.
 */
export async function shutdown(): Promise<void> {
  const running = embedded;
  embedded = undefined;
  if (!running) return;
  if (currentRuntime() === running.node) setCurrentRuntime(undefined);
  await running.node.shutdown();
}

/** The runtime of this process: a worker's, or the embedded node (started with the defaults if needed). */
export function runtime(): Runtime {
  const current = currentRuntime();
  if (current) return current;
  embedded ??= start({});
  return embedded.node;
}
