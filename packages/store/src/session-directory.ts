import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { debuglog } from 'node:util';
import { SessionDirectoryError } from '@shoal/protocol';

const debug = debuglog('shoal:store');

/** Session directories are `<root>/shoal-<sessionId>`; this prefix is what a sweep looks for. */
export const SESSION_PREFIX = 'shoal-';
const OWNER_FILE = 'owner.json';
/** The node's unix socket, in its session directory: other processes of the machine attach there. */
const NODE_SOCKET = 'node.sock';
/** A directory still without an owner file after this long was abandoned while being created. */
const UNCLAIMED_GRACE_MS = 60_000;

interface Owner {
  readonly pid: number;
  /** The owner's start time in clock ticks since boot (/proc/<pid>/stat field 22): guards pid reuse. */
  readonly startTime: string | null;
}

function processStartTime(pid: number | 'self'): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) are space-separated.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const startTime = processStartTime(owner.pid);
  return owner.startTime === null || startTime === null || startTime === owner.startTime;
}

function readOwner(directory: string): Owner | undefined {
  try {
    const owner = JSON.parse(readFileSync(join(directory, OWNER_FILE), 'utf8')) as Partial<Owner>;
    if (typeof owner.pid !== 'number') return undefined;
    return { pid: owner.pid, startTime: typeof owner.startTime === 'string' ? owner.startTime : null };
  } catch {
    return undefined;
  }
}

/**
 * Removes session directories under `root` whose owning process is dead (killed with SIGKILL,
 * crashed, or the machine's pid was reused). Returns the directories removed.
 */
export function sweepStaleSessions(root: string): string[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(SESSION_PREFIX)) continue;
    const directory = join(root, name);
    const owner = readOwner(directory);
    let stale: boolean;
    if (owner) {
      stale = !isAlive(owner);
    } else {
      // Without an owner file only a directory can be a session (one that died while being
      // created); a plain file or link named shoal-* belongs to someone else and is left alone.
      try {
        const stats = lstatSync(directory);
        stale = stats.isDirectory() && Date.now() - stats.mtimeMs > UNCLAIMED_GRACE_MS;
      } catch {
        continue;
      }
    }
    if (!stale) continue;
    try {
      rmSync(directory, { recursive: true, force: true });
      removed.push(directory);
      debug('removed stale session directory %s (owner %o)', directory, owner);
    } catch (error) {
      debug('could not remove stale session directory %s: %o', directory, error);
    }
  }
  return removed;
}

type Cleanup = () => void;
const cleanups = new Set<Cleanup>();
let hooksInstalled = false;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function runCleanups(): void {
  for (const cleanup of [...cleanups]) {
    try {
      cleanup();
    } catch (error) {
      debug('cleanup failed: %o', error);
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  // Only act when Shoal is the sole listener: then the signal would otherwise have ended the
  // process with no cleanup. Clean up, step aside and re-raise it so the process still ends the
  // way it would have (exit status 128 + signal). If the application listens too, it decides
  // when to exit and the 'exit' hook cleans up then.
  if (process.listenerCount(signal) > 1) return;
  runCleanups();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, signal);
}

function installHooks(handleSignals: boolean): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', runCleanups);
  if (handleSignals) for (const signal of SIGNALS) process.on(signal, onSignal);
}

/**
 * The directory that holds one session's segments, owned by this process: created on
 * construction (after sweeping dead sessions), removed by {@link SessionDirectory.remove} and, as
 * a safety net, on process exit and on fatal signals.
 */
export class SessionDirectory {
  /** Absolute path of the directory. */
  readonly path: string;
  readonly sessionId: string;
  #removed = false;
  readonly #cleanup: Cleanup;

  /** `createRoot`: make `root` (and its parents) when missing (a spill root under a temp directory). */
  constructor(root: string, sessionId: string, handleSignals: boolean, options: { createRoot?: boolean } = {}) {
    this.sessionId = sessionId;
    this.path = join(root, `${SESSION_PREFIX}${sessionId}`);
    sweepStaleSessions(root);
    try {
      if (options.createRoot) mkdirSync(root, { recursive: true, mode: 0o700 });
      mkdirSync(this.path, { mode: 0o700 });
      const owner: Owner = { pid: process.pid, startTime: processStartTime('self') };
      writeFileSync(join(this.path, OWNER_FILE), JSON.stringify(owner), { mode: 0o600 });
    } catch (error) {
      rmSync(this.path, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      throw new SessionDirectoryError(this.path, root, code, { cause: error });
    }
    this.#cleanup = () => this.remove();
    cleanups.add(this.#cleanup);
    installHooks(handleSignals);
  }

  /** Path of an object's segment file. */
  segmentPath(objectId: string): string {
    return join(this.path, objectId);
  }

  /** Removes the directory and everything in it; idempotent. */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    cleanups.delete(this.#cleanup);
    rmSync(this.path, { recursive: true, force: true });
    debug('removed session directory %s', this.path);
  }
}

/** The segment path of an object owned by session `owner` under `root`. */
export function segmentPathOf(root: string, owner: string, objectId: string): string {
  return join(root, `${SESSION_PREFIX}${owner}`, objectId);
}

/** The path of the node socket in session directory `directory` (the node listens there). */
export function nodeSocketPath(directory: string): string {
  return join(directory, NODE_SOCKET);
}

/**
 * The session whose node listens at socket `path` (`<root>/shoal-<id>/node.sock`): its id and
 * directory, or undefined when `path` is not such a socket path.
 *
 * @example
 * ```ts
 * sessionOfSocket('/dev/shm/shoal-abc/node.sock'); // { sessionId: 'abc', directory: '/dev/shm/shoal-abc' }
 * ```
 */
export function sessionOfSocket(path: string): { readonly sessionId: string; readonly directory: string } | undefined {
  if (!path.startsWith('/') || !path.endsWith(`/${NODE_SOCKET}`)) return undefined;
  const directory = dirname(path);
  const name = basename(directory);
  if (!name.startsWith(SESSION_PREFIX)) return undefined;
  return { sessionId: name.slice(SESSION_PREFIX.length), directory };
}
