import { debuglog, isDeepStrictEqual } from 'node:util';
import { AlreadyInitializedError, InWorkerError, argumentError, showCopyProgress } from '@shoal/runtime';
import {
  NODE_MANAGER_OPTION_KEYS,
  NodeManager,
  checkOptionNames,
  attachToNode,
  currentRuntime,
  liveDaemon,
  setCurrentRuntime,
  shoalHome,
  type NodeOptions,
  type Runtime,
  type NodeClient,
} from '@shoal/runtime';
import type { StoreOptions } from '@shoal/runtime';

/** Options of {@link init}: the node's resources and its object store, or a node to attach to. */
export interface InitOptions extends StoreOptions, NodeOptions {
  /**
   * Attach to the node running at this address instead of starting one: any process of the
   * machine (a `node:cluster` worker, another server) then reads the node's objects zero-copy.
   * The address is the node's `session.address` (`unix:/dev/shm/shoal-<id>/node.sock`); the
   * node's directory is private to its user, so only that user's processes can attach.
   * `'embedded'` starts a node of this process even when a daemon runs here.
   * @default process.env.SHOAL_ADDRESS, else this machine's running daemon (`shoal start`, found
   * through SHOAL_HOME) when no node option is given, else an embedded node
   */
  readonly address?: string;
  /**
   * The cluster token, for `address: 'ws://...'`. Attaching to this machine's node goes through
   * its unix socket, which only the node's user can open, so the token is not needed there.
   * @default process.env.SHOAL_TOKEN
   */
  readonly token?: string;
}

/** The running Shoal session of this process, as returned by {@link init}. */
export interface ShoalSession {
  /** The session id (names `/dev/shm/shoal-<sessionId>/`). */
  readonly sessionId: string;
  /** The session's segment directory. */
  readonly directory: string;
  /** Where other processes of this machine attach (`init({ address })` or `SHOAL_ADDRESS`). */
  readonly address: string;
  /** Whether this process attached to another process's node rather than running one. */
  readonly attached: boolean;
  /** Pids of the worker processes alive now (those that run tasks; actors have their own, below). */
  workerPids(): number[];
  /** Pids of the actors' processes alive now (one per live actor). */
  actorPids(): number[];
  /** Stops the session (same as {@link shutdown}). */
  shutdown(): Promise<void>;
  /**
   * Stops the session (same as {@link shutdown}), for `await using`:
   *
   * ```ts
   * await using session = await init();
   * // ... the session is shut down when the block ends, however it ends
   * ```
   */
  [Symbol.asyncDispose](): Promise<void>;
}

interface Embedded {
  readonly runtime: Runtime;
  readonly ready: () => Promise<void>;
  /** An embedded node started without its workers starts them (see {@link expectTasks}). */
  readonly startWorkers?: () => void;
  readonly options: InitOptions;
  readonly session: ShoalSession;
}

let embedded: Embedded | undefined;

/** Every option init() takes: the node's, the store's, and attaching's. */
const INIT_OPTION_KEYS: readonly string[] = [...NODE_MANAGER_OPTION_KEYS, 'address', 'token'];

const debug = debuglog('shoal:session');

/** The address `init({ address })` takes for "a node of this process". */
const EMBEDDED = 'embedded';

/**
 * Where a session without an address goes: this machine's running daemon (as `ray.init()` joins
 * the cluster running here), unless node options ask for a node of this process.
 */
function daemonAddress(nodeOptions: object): string | undefined {
  if (Object.keys(nodeOptions).length > 0) return undefined;
  const home = shoalHome();
  const daemon = liveDaemon(home);
  if (daemon) debug('attaching to the daemon running for %s (pid %d) at %s; init({ address: "embedded" }) starts a node of this process instead', home, daemon.pid, daemon.address);
  return daemon?.address;
}

/** Starts the session; `implicit` (the store or a task used before init()) starts no worker until a task needs one. */
function start(options: InitOptions, implicit = false): Embedded {
  // logToDriver and runtimeEnv apply to an attached program too: they do not ask for a node of its own.
  const { address: given, token: _token, logToDriver, runtimeEnv, ...nodeOptions } = options;
  const address = given ?? (process.env.SHOAL_ADDRESS || undefined) ?? daemonAddress(nodeOptions);
  if (address !== undefined && address !== EMBEDDED) return attach(address, options);
  const node = new NodeManager({ ...nodeOptions, ...(logToDriver === undefined ? {} : { logToDriver }), ...(runtimeEnv === undefined ? {} : { runtimeEnv }) });
  // Listening and starting the workers begin now: a task submitted before init() resolves (or
  // without init()) runs as soon as a worker is up. Failures surface through ready().
  void node.start({ workers: !implicit });
  setCurrentRuntime(node);
  const session: ShoalSession = {
    sessionId: node.store.sessionId,
    directory: node.store.directory,
    address: node.address,
    attached: false,
    workerPids: () => node.workerPids(),
    actorPids: () => node.actorPids(),
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
  return { runtime: node, ready: () => node.ready(), startWorkers: () => node.startWorkers(), options, session };
}

function attach(address: string, options: InitOptions): Embedded {
  const { address: _address, token: _token, logToDriver, runtimeEnv, ...rest } = options;
  if (Object.keys(rest).length > 0) {
    throw argumentError('ERR_INVALID_ARGUMENT',
      `Options ${Object.keys(rest).map((key) => `\`${key}\``).join(', ')} configure a node and cannot be given ` +
        'with `address` (attaching uses the node that is already running).',
    );
  }
  const client: NodeClient = attachToNode(address, options.token ?? (process.env.SHOAL_TOKEN || undefined), {
    ...(logToDriver === undefined ? {} : { logToDriver }),
    ...(runtimeEnv === undefined ? {} : { runtimeEnv }),
  });
  setCurrentRuntime(client);
  const session: ShoalSession = {
    // A program joining over the network learns the node's session from its welcome.
    get sessionId() {
      return client.sessionId;
    },
    directory: client.directory,
    address,
    attached: true,
    workerPids: () => [],
    actorPids: () => [],
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
  return { runtime: client, ready: () => client.connected, options, session };
}

/**
 * Starts Shoal in this process: the embedded default, a one-node cluster inside this process
 * (object store, scheduler, and one worker process per CPU, started now). Using `store` or a
 * remote function before `init()` starts it with the defaults. Resolves once the first worker is
 * up: tasks run on it at once, and on the others as they start.
 *
 * With `address` (or `SHOAL_ADDRESS`), attaches to a node another process runs on this machine
 * instead (see {@link InitOptions.address}).
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
  if (typeof options !== 'object' || options === null) throw argumentError('ERR_INVALID_ARGUMENT', `Expected init() options to be an object, got \`${String(options)}\``);
  checkOptionNames('init()', options, INIT_OPTION_KEYS);
  if (currentRuntime()?.kind === 'worker') {
    throw new InWorkerError();
  }
  if (embedded) {
    if (!isDeepStrictEqual(embedded.options, options)) {
      throw new AlreadyInitializedError();
    }
  } else {
    // Puts and pulls of objects over 1 GiB show a bar on stderr when it is a terminal.
    showCopyProgress();
    embedded = start(options);
  }
  try {
    await embedded.ready();
  } catch (error) {
    await shutdown();
    throw error;
  }
  return embedded.session;
}

/**
 * Stops Shoal in this process: pending tasks fail, worker processes exit, every object is freed
 * and the session directory is removed. Process exit does the same. In an attached process it
 * only disconnects from the node. Idempotent.
 */
export async function shutdown(): Promise<void> {
  const running = embedded;
  embedded = undefined;
  if (!running) return;
  if (currentRuntime() === running.runtime) setCurrentRuntime(undefined);
  await running.runtime.shutdown();
}

/**
 * The runtime of this process: a worker's, the attached node's, or the embedded node — started
 * with the defaults (attaching to `SHOAL_ADDRESS` if set) if needed.
 */
export function runtime(): Runtime {
  const current = currentRuntime();
  if (current) return current;
  embedded ??= start({}, true);
  return embedded.runtime;
}

/**
 * A remote function was made: an embedded node started by the store alone (without its workers)
 * starts them now, ahead of the first call. Nothing starts when no session runs yet.
 */
export function expectTasks(): void {
  embedded?.startWorkers?.();
}
