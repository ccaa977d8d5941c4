import { availableParallelism } from 'node:os';
import { checkObjectName, argumentError, type ActorCallOptions, type WireActorOptions } from '@shoal/protocol';

/** Options of a remote function (`remote(fn, options)`), each validated once. */
export interface RemoteOptions {
  /** CPUs the task occupies while it runs; fractions share a CPU. @default 1 */
  readonly numCpus?: number;
  /** Custom resources the task needs, e.g. `{ gpu: 1 }`. @default {} */
  readonly resources?: Readonly<Record<string, number>>;
  /** Times a task is retried when its worker dies. @default 3 */
  readonly maxRetries?: number;
  /**
   * Whether a task that throws is retried (within `maxRetries`): `true` for any error, or a list
   * of error names to retry on.
   * @default false
   */
  readonly retryExceptions?: boolean | readonly string[];
  /** Kill the task's worker and fail with `TaskTimeoutError` after this many ms. @default none */
  readonly timeoutMs?: number;
  /**
   * Cancels the task when the signal aborts, as `cancel(ref)` does: a queued task is dropped, a
   * running one has its worker killed, and getting its ref rejects with `TaskCancelledError`. A
   * signal aborted already cancels the task as it is submitted. A finished task is unaffected.
   */
  readonly signal?: AbortSignal;
  /**
   * Only for an async generator function (a streaming task): how many items it may yield ahead
   * of its consumer before it is paused at its next `yield`.
   * @default 16
   */
  readonly streamWindow?: number;
  /**
   * The environment of the worker that runs the task, as Ray's `runtime_env` (`env_vars`,
   * `working_dir`): variables added to its `process.env`, and its working directory (absolute;
   * `require` and relative paths in the task resolve from it). Tasks with one run on workers
   * started for that environment (then stopped once idle); see {@link RuntimeEnv}.
   * @default the node's (its `init({ runtimeEnv })`, else its own environment)
   */
  readonly runtimeEnv?: RuntimeEnv;
}

/** Environment variables and working directory for the workers that run a task. */
export interface RuntimeEnv {
  /** Variables set in the worker's `process.env` (names starting with `SHOAL_` are Shoal's own and refused). */
  readonly env?: Readonly<Record<string, string>>;
  /** The worker's working directory: an absolute path that exists on the node that runs the task. */
  readonly cwd?: string;
}

export interface ResolvedRemoteOptions {
  readonly numCpus: number;
  readonly resources: Readonly<Record<string, number>>;
  readonly maxRetries: number;
  readonly retryExceptions: boolean | readonly string[];
  readonly timeoutMs: number | null;
  /** Set for a streaming task (an async generator function) only. */
  readonly streamWindow?: number;
  /** Set when the task asked for an environment of its own. */
  readonly runtimeEnv?: ResolvedRuntimeEnv;
}

/** A validated {@link RuntimeEnv} (`env` always present). */
export interface ResolvedRuntimeEnv {
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/** Items a streaming task or method may yield ahead of its consumer, unless it says. */
export const DEFAULT_STREAM_WINDOW = 16;

/** Options of an actor class (`actor(Class, options)`), each validated once. */
export interface ActorOptions {
  /**
   * Makes the actor findable by this name from every process attached to its node
   * (`getActor(name)`). Two live actors cannot share a name: the second one is dead at once, and
   * its calls fail with ActorDiedError saying so.
   */
  readonly name?: string;
  /**
   * `'detached'`: the actor lives on after its creator exits and its handles are gone, until it
   * is killed or its node stops. By default it dies with the process that created it, or once
   * no handle to it remains anywhere.
   */
  readonly lifetime?: 'detached' | 'owned';
  /** Calls that may run at once: async methods interleave at their awaits. @default 1 */
  readonly maxConcurrency?: number;
  /**
   * Times the actor is restarted when its process dies (the constructor runs again with the same
   * arguments; its state starts afresh). Calls running then fail with ActorDiedError unless
   * `maxTaskRetries` lets them run again. @default 0
   */
  readonly maxRestarts?: number;
  /** Times a call lost to a dying process runs again on the restarted actor. @default 0 */
  readonly maxTaskRetries?: number;
  /**
   * CPUs the actor holds while it lives (tasks cannot use them meanwhile). By default it holds
   * none, though placing it needs a node offering a CPU.
   * @default 0
   */
  readonly numCpus?: number;
  /** Custom resources it holds while it lives, e.g. `{ gpu: 1 }`. @default {} */
  readonly resources?: Readonly<Record<string, number>>;
  /** For async generator methods: items a call may yield ahead of its consumer. @default 16 */
  readonly streamWindow?: number;
  /** The environment of the actor's process (see {@link RuntimeEnv}). @default the node's */
  readonly runtimeEnv?: RuntimeEnv;
}

/** Actor options with every default applied, as they travel. */
export type ResolvedActorOptions = WireActorOptions;

const ACTOR_KEYS = ['name', 'lifetime', 'maxConcurrency', 'maxRestarts', 'maxTaskRetries', 'numCpus', 'resources', 'streamWindow', 'runtimeEnv'] as const;

/** Validates actor options, naming the bad one, and applies defaults. */
export function resolveActorOptions(options: ActorOptions = {}): ResolvedActorOptions {
  if (options === null || typeof options !== 'object') {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected actor options to be an object, got \`${show(options)}\``);
  }
  checkOptionNames('actor', options, ACTOR_KEYS);
  if (options.name !== undefined) checkObjectName(options.name);
  if (options.lifetime !== undefined && options.lifetime !== 'detached' && options.lifetime !== 'owned') {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`lifetime\` to be 'detached' or 'owned', got \`${show(options.lifetime)}\``);
  }
  const maxConcurrency = options.maxConcurrency === undefined ? 1 : nonNegativeNumber('maxConcurrency', options.maxConcurrency, true);
  if (maxConcurrency < 1 || maxConcurrency > 100_000) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`maxConcurrency\` to be an integer from 1 to 100000, got \`${maxConcurrency}\``);
  }
  return {
    ...(options.name === undefined ? {} : { name: options.name }),
    detached: options.lifetime === 'detached',
    maxConcurrency,
    maxRestarts: options.maxRestarts === undefined ? 0 : nonNegativeNumber('maxRestarts', options.maxRestarts, true),
    maxTaskRetries: options.maxTaskRetries === undefined ? 0 : nonNegativeNumber('maxTaskRetries', options.maxTaskRetries, true),
    numCpus: options.numCpus === undefined ? 0 : nonNegativeNumber('numCpus', options.numCpus, false),
    resources: options.resources === undefined ? {} : resourceMap('resources', options.resources),
    streamWindow: streamWindow(options.streamWindow),
    ...(options.runtimeEnv === undefined ? {} : { runtimeEnv: resolveRuntimeEnv('runtimeEnv', options.runtimeEnv) }),
  };
}

/** The `streamWindow` option: a positive integer, 16 by default. */
export function streamWindow(value: unknown): number {
  if (value === undefined) return DEFAULT_STREAM_WINDOW;
  const window = nonNegativeNumber('streamWindow', value, true);
  if (window < 1 || window > 1_000_000) throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`streamWindow\` to be an integer from 1 to 1000000, got \`${window}\``);
  return window;
}

/** Options of the local node (part of `init()`'s options). */
export interface NodeOptions {
  /**
   * CPUs this node offers to tasks; one worker process is prestarted per CPU. `0` makes a node
   * that only stores objects (tasks needing CPUs are then infeasible).
   * @default the machine's CPU count
   */
  readonly numCpus?: number;
  /** Custom resources this node offers, e.g. `{ gpu: 2 }`. @default {} */
  readonly resources?: Readonly<Record<string, number>>;
  /** Most worker processes at once (extra ones start when workers block waiting on others). @default max(4 x numCpus, 16) */
  readonly maxWorkers?: number;
  /**
   * The hard cap on worker processes once every worker is blocked waiting on other tasks'
   * results (nested tasks that await their children): past `maxWorkers` the node starts more, up
   * to this many, so that the children can run. Past it the newest task waiting to start fails
   * with `WorkerLimitError` (naming this cap) rather than everything waiting forever.
   * @default max(4 x maxWorkers, 64)
   */
  readonly maxBlockedWorkers?: number;
  /**
   * Forward what tasks and actors write to stdout/stderr to the program that submitted them,
   * each line prefixed `(function pid=N)` (and `node=ID` from another node), as Ray does: through
   * a daemon, and from other nodes of a cluster. `false`: workers write to this node's own
   * stdout/stderr unprefixed (for an attached program: its tasks' output stays with the node).
   * @default true
   */
  readonly logToDriver?: boolean;
  /**
   * The environment of this node's workers (see {@link RuntimeEnv}): every task runs with these
   * variables and in this directory, unless its own `runtimeEnv` says otherwise.
   * @default this process's environment and working directory
   */
  readonly runtimeEnv?: RuntimeEnv;
}

export interface ResolvedNodeOptions {
  readonly numCpus: number;
  readonly resources: Readonly<Record<string, number>>;
  readonly maxWorkers: number;
  readonly maxBlockedWorkers: number;
  readonly logToDriver: boolean;
  readonly runtimeEnv: ResolvedRuntimeEnv | undefined;
}

export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return `[function ${value.name || 'anonymous'}]`;
  if (value !== null && typeof value === 'object') {
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

/** Names people reach for (Ray's, other spellings) and the option they mean. */
const ALIASES: Readonly<Record<string, string>> = {
  cpus: 'numCpus',
  numcpu: 'numCpus',
  ncpus: 'numCpus',
  workers: 'maxWorkers',
  memory: 'objectStoreMemory',
  objectstorememorybytes: 'objectStoreMemory',
  storememory: 'objectStoreMemory',
  spilldir: 'spillDirectory',
  spillpath: 'spillDirectory',
  tmpdir: 'shmRoot',
};

/** The known option `key` was most likely meant as (case, `_` and `-` aside: an alias, a near spelling, or a part of its name), if any. */
export function meantOption(key: string, known: readonly string[]): string | undefined {
  const plain = (name: string) => name.toLowerCase().replace(/[_-]/g, '');
  const wanted = plain(key);
  const alias = ALIASES[wanted];
  if (alias !== undefined && known.includes(alias)) return alias;
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(wanted, plain(name));
    if (distance === 0) return name;
    if (!best || distance < best.distance) best = { name, distance };
  }
  if (best && best.distance <= Math.max(2, Math.floor(wanted.length / 4))) return best.name;
  // A part of the name (`retries` for `maxRetries`, `timeout` for `timeoutMs`).
  return wanted.length >= 4 ? known.filter((name) => plain(name).includes(wanted)).sort((a, b) => a.length - b.length)[0] : undefined;
}

/** Levenshtein distance of two short strings. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Throws a TypeError for the first key of `options` not in `known`, naming what it was most
 * likely meant as and every known option. `what`: whose options they are (`init()`, `remote()`).
 */
export function checkOptionNames(what: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const meant = meantOption(key, known);
    throw argumentError('ERR_UNKNOWN_OPTION',
      `Unknown ${what} option \`${key}\`${meant === undefined ? '' : ` (did you mean \`${meant}\`?)`}; ` +
        `the options are ${known.map((k) => `\`${k}\``).join(', ')}`,
    );
  }
}


/** The rule for every count of CPUs or resource amount: a finite number >= 0 (`integer`: whole). */
export function nonNegativeNumber(name: string, value: unknown, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be a non-negative ${integer ? 'integer' : 'number'}, got \`${show(value)}\``);
  }
  return value;
}

/** The rule for a flag: true or false. */
export function booleanOption(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be true or false, got \`${show(value)}\``);
  return value;
}

/** The rule for a map of custom resources (`{ gpu: 1 }`): amounts >= 0, and no `CPU` key. */
export function resourceMap(name: string, value: unknown): Record<string, number> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be an object of resource amounts like { gpu: 1 }, got \`${show(value)}\``);
  }
  const result: Record<string, number> = {};
  for (const [key, amount] of Object.entries(value)) {
    if (key === 'CPU') throw argumentError('ERR_INVALID_ARGUMENT', `Use \`numCpus\` rather than \`${name}.CPU\``);
    result[key] = nonNegativeNumber(`${name}.${key}`, amount, false);
  }
  return result;
}

const REMOTE_KEYS = ['numCpus', 'resources', 'maxRetries', 'retryExceptions', 'timeoutMs', 'signal', 'streamWindow', 'runtimeEnv'] as const;

/** The rule for a runtimeEnv: string variables not Shoal's own, an absolute working directory. */
export function resolveRuntimeEnv(name: string, value: unknown): ResolvedRuntimeEnv {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be an object like { env: { KEY: 'value' }, cwd: '/abs/dir' }, got \`${show(value)}\``);
  }
  checkOptionNames(name, value, ['env', 'cwd']);
  const { env = {}, cwd } = value as RuntimeEnv;
  if (env === null || typeof env !== 'object' || Array.isArray(env)) throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}.env\` to be an object of strings, got \`${show(env)}\``);
  for (const [key, text] of Object.entries(env)) {
    if (typeof text !== 'string') throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}.env.${key}\` to be a string, got \`${show(text)}\``);
    if (key === '' || key.includes('=') || key.includes('\0')) throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}.env\` to have variable names without '=' or NUL, got \`${show(key)}\``);
    if (key.startsWith('SHOAL_')) throw argumentError('ERR_INVALID_ARGUMENT', `\`${name}.env.${key}\`: variables starting with SHOAL_ configure the worker itself and cannot be set`);
  }
  if (cwd !== undefined && (typeof cwd !== 'string' || !cwd.startsWith('/'))) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}.cwd\` to be an absolute path, got \`${show(cwd)}\``);
  }
  return { env: { ...env }, ...(cwd === undefined ? {} : { cwd }) };
}

function checkSignal(signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`signal\` to be an AbortSignal, got \`${show(signal)}\``);
  }
}

/** Validates the options of one actor call (`handle.method.options({ signal })`). */
export function resolveActorCallOptions(options: unknown): ActorCallOptions {
  if (options === null || typeof options !== 'object') {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected actor call options to be an object, got \`${show(options)}\``);
  }
  checkOptionNames('actor call', options, ['signal']);
  checkSignal((options as ActorCallOptions).signal);
  return options as ActorCallOptions;
}

/**
 * Validates remote options, naming the bad one, and applies defaults. `streaming`: the function
 * is an async generator (only then may `streamWindow` be given; it defaults to 16).
 */
export function resolveRemoteOptions(options: RemoteOptions = {}, streaming = false): ResolvedRemoteOptions {
  if (options === null || typeof options !== 'object') {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected remote options to be an object, got \`${show(options)}\``);
  }
  checkOptionNames('remote', options, REMOTE_KEYS);
  // The signal stays in the submitting process (see makeRemote): it is not a task option.
  checkSignal(options.signal);
  const numCpus = options.numCpus === undefined ? 1 : nonNegativeNumber('numCpus', options.numCpus, false);
  const retry = options.retryExceptions ?? false;
  if (typeof retry !== 'boolean' && !(Array.isArray(retry) && retry.every((name) => typeof name === 'string'))) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`retryExceptions\` to be a boolean or a list of error names, got \`${show(retry)}\``);
  }
  if (streaming && options.maxRetries !== undefined && options.maxRetries !== 0) {
    throw argumentError('ERR_INVALID_ARGUMENT', 'A streaming task is not retried (its consumer has items of the first run already): leave out `maxRetries`');
  }
  if (!streaming && options.streamWindow !== undefined) {
    throw argumentError('ERR_INVALID_ARGUMENT', '`streamWindow` is an option of streaming tasks only: the function is not an async generator (`async function*`)');
  }
  let timeoutMs: number | null = null;
  if (options.timeoutMs !== undefined) {
    timeoutMs = nonNegativeNumber('timeoutMs', options.timeoutMs, false);
    if (timeoutMs === 0) throw argumentError('ERR_INVALID_ARGUMENT', 'Expected `timeoutMs` to be a positive number, got `0`');
  }
  return {
    numCpus,
    resources: options.resources === undefined ? {} : resourceMap('resources', options.resources),
    maxRetries: streaming ? 0 : options.maxRetries === undefined ? 3 : nonNegativeNumber('maxRetries', options.maxRetries, true),
    retryExceptions: Array.isArray(retry) ? [...retry] : retry,
    timeoutMs,
    ...(streaming ? { streamWindow: streamWindow(options.streamWindow) } : {}),
    ...(options.runtimeEnv === undefined ? {} : { runtimeEnv: resolveRuntimeEnv('runtimeEnv', options.runtimeEnv) }),
  };
}

const NODE_KEYS = ['numCpus', 'resources', 'maxWorkers', 'maxBlockedWorkers', 'logToDriver', 'runtimeEnv'] as const;
export const NODE_OPTION_KEYS: readonly string[] = NODE_KEYS;

/** Validates node options and applies defaults. */
export function resolveNodeOptions(options: NodeOptions = {}): ResolvedNodeOptions {
  checkOptionNames('node', options, NODE_KEYS);
  const numCpus = options.numCpus === undefined ? availableParallelism() : nonNegativeNumber('numCpus', options.numCpus, false);
  const maxWorkers =
    options.maxWorkers === undefined
      ? (numCpus === 0 ? 0 : Math.max(4 * Math.ceil(numCpus), 16))
      : nonNegativeNumber('maxWorkers', options.maxWorkers, true);
  if (maxWorkers < Math.ceil(numCpus)) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`maxWorkers\` to be at least numCpus (${Math.ceil(numCpus)}), got \`${maxWorkers}\``);
  }
  const maxBlockedWorkers =
    options.maxBlockedWorkers === undefined
      ? (maxWorkers === 0 ? 0 : Math.max(4 * maxWorkers, 64))
      : nonNegativeNumber('maxBlockedWorkers', options.maxBlockedWorkers, true);
  if (maxBlockedWorkers < maxWorkers) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`maxBlockedWorkers\` to be at least maxWorkers (${maxWorkers}), got \`${maxBlockedWorkers}\``);
  }
  return {
    numCpus,
    resources: options.resources === undefined ? {} : resourceMap('resources', options.resources),
    maxWorkers,
    maxBlockedWorkers,
    logToDriver: options.logToDriver === undefined ? true : booleanOption('logToDriver', options.logToDriver),
    runtimeEnv: options.runtimeEnv === undefined ? undefined : resolveRuntimeEnv('runtimeEnv', options.runtimeEnv),
  };
}
