import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { isValidId, argumentError } from '@shoal/protocol';

/** Options of an {@link ObjectStore}; every one is optional. */
export interface StoreOptions {
  /**
   * The session id; it names the segment directory `<shmRoot>/shoal-<sessionId>/`.
   * @default a new random id
   */
  readonly sessionId?: string;
  /**
   * Where segment directories live: a tmpfs mount.
   * @default '/dev/shm'
   */
  readonly shmRoot?: string;
  /**
   * Bytes of segments the store may hold at once; a put beyond it fails with
   * `ObjectStoreFullError`.
   * @default 30% of RAM, bounded by the free space of `shmRoot`
   */
  readonly objectStoreMemory?: number;
  /**
   * Objects smaller than this many bytes (serialized) stay inline in the owner's memory instead
   * of getting a segment: copying them is cheaper than mapping them.
   * @default 102400 (100 KiB)
   */
  readonly inlineThreshold?: number;
  /**
   * Segment mappings this process keeps cached. Each is one entry of the kernel's per-process
   * map count (`vm.max_map_count`), so the default stays well below it.
   * @default a quarter of vm.max_map_count, at most 16384
   */
  readonly maxMappings?: number;
  /**
   * Remove the session directory on SIGINT, SIGTERM and SIGHUP when nothing else handles them
   * (and then let the signal end the process as usual). Normal exit always cleans up.
   * @default true
   */
  readonly handleSignals?: boolean;
  /**
   * Where objects go when the store is full: least recently used objects that no process maps
   * are written here (a directory on disk, not tmpfs: `<spillDirectory>/shoal-<sessionId>/`) and
   * read back when used. `false` turns spilling off (a full store refuses puts).
   * @default `/var/tmp/shoal-spill-<uid>` (on disk on most systems, where /tmp may be tmpfs), or
   *   `<os.tmpdir()>/shoal-spill-<uid>` without /var/tmp
   */
  readonly spillDirectory?: string | false;
}

/** Options with every default applied. */
export interface ResolvedStoreOptions {
  readonly sessionId: string | undefined;
  readonly shmRoot: string;
  readonly objectStoreMemory: number;
  readonly inlineThreshold: number;
  readonly maxMappings: number;
  readonly handleSignals: boolean;
  readonly spillDirectory: string | false;
}

const KNOWN = new Set(['sessionId', 'shmRoot', 'objectStoreMemory', 'inlineThreshold', 'maxMappings', 'handleSignals', 'spillDirectory']);
/** The names of the store's options (for a caller that checks a larger set of options). */
export const STORE_OPTION_KEYS: readonly string[] = [...KNOWN];

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'bigint' ? `${value}n` : String(value);
}

function positiveInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be an integer of at least ${min}, got \`${show(value)}\``);
  }
  return value;
}

/** The kernel's per-process limit on mappings (`vm.max_map_count`), or undefined when it cannot be read. */
export function readMaxMapCount(): number | undefined {
  try {
    const value = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim());
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The kernel's per-process limit on mappings, or 65530 (its default) when it cannot be read. */
export function maxMapCount(): number {
  return readMaxMapCount() ?? 65530;
}

/**
 * Segment mappings a process keeps cached unless told otherwise (the store's `maxMappings`, and
 * the cache of a process that is not the store): a quarter of vm.max_map_count, 64 to 16384.
 */
export function defaultMaxMappings(): number {
  return Math.min(16384, Math.max(64, Math.floor(maxMapCount() / 4)));
}

/** Free bytes of the file system at `path` (for tmpfs: of its size limit). */
export function freeSpace(path: string): number {
  const stats = statfsSync(path);
  return Number(stats.bavail) * Number(stats.bsize);
}

/** This user's own spill root: under /var/tmp (a disk, where /tmp is often tmpfs), one per user. */
function defaultSpillDirectory(): string {
  const user = process.getuid?.() ?? 'user';
  const base = existsSync('/var/tmp') ? '/var/tmp' : tmpdir();
  return join(base, `shoal-spill-${user}`);
}

/** Validates options once, naming the bad one, and applies the defaults. */
export function resolveStoreOptions(options: StoreOptions = {}): ResolvedStoreOptions {
  if (options === null || typeof options !== 'object') {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected store options to be an object, got \`${show(options)}\``);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw argumentError('ERR_UNKNOWN_OPTION', `Unknown store option \`${key}\`; known options are ${[...KNOWN].map((k) => `\`${k}\``).join(', ')}`);
    }
  }
  if (options.sessionId !== undefined && !isValidId(options.sessionId)) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`sessionId\` to be 1-64 characters of [0-9A-Za-z_-], got \`${show(options.sessionId)}\``);
  }
  const shmRoot = options.shmRoot ?? '/dev/shm';
  if (typeof shmRoot !== 'string' || !shmRoot.startsWith('/')) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`shmRoot\` to be an absolute path, got \`${show(shmRoot)}\``);
  }
  if (options.handleSignals !== undefined && typeof options.handleSignals !== 'boolean') {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`handleSignals\` to be a boolean, got \`${show(options.handleSignals)}\``);
  }
  const spillDirectory = options.spillDirectory ?? defaultSpillDirectory();
  if (spillDirectory !== false && (typeof spillDirectory !== 'string' || !spillDirectory.startsWith('/'))) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`spillDirectory\` to be an absolute path or false, got \`${show(spillDirectory)}\``);
  }
  let objectStoreMemory: number;
  if (options.objectStoreMemory !== undefined) {
    objectStoreMemory = positiveInteger('objectStoreMemory', options.objectStoreMemory, 1);
  } else {
    let free = Number.POSITIVE_INFINITY;
    try {
      free = freeSpace(shmRoot);
    } catch {
      // The directory is created (and its absence reported) when the store starts.
    }
    objectStoreMemory = Math.floor(Math.min(0.3 * totalmem(), free));
  }
  return {
    sessionId: options.sessionId,
    shmRoot,
    objectStoreMemory,
    inlineThreshold:
      options.inlineThreshold === undefined ? 100 * 1024 : positiveInteger('inlineThreshold', options.inlineThreshold, 0),
    maxMappings:
      options.maxMappings === undefined
        ? defaultMaxMappings()
        : positiveInteger('maxMappings', options.maxMappings, 1),
    handleSignals: options.handleSignals ?? true,
    spillDirectory,
  };
}
