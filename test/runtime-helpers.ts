// Shared by the runtime integration tests (runtime*.test.ts): starting sessions, tracking the
// worker processes they start, and checking that nothing is left once a test is over.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, shutdown, type InitOptions, type ShoalSession } from 'shoal';

/** Bound on every wait for something that must happen (a process dying, a file appearing). */
export const LIVENESS_MS = 15_000;

const sessions = new Set<ShoalSession>();
const seenPids = new Set<number>();
const directories = new Set<string>();

/** `init(options)`, remembering the session and its workers for {@link cleanUp}. */
export async function start(options: InitOptions = {}): Promise<ShoalSession> {
  const session = await init(options);
  sessions.add(session);
  directories.add(session.directory);
  workerPids(session);
  return session;
}

/** The session's live worker pids (remembered: every one must be dead after the test). */
export function workerPids(session: ShoalSession): number[] {
  const pids = session.workerPids();
  for (const pid of pids) seenPids.add(pid);
  actorPids(session);
  return pids;
}

/** The session's live actor process pids (remembered: every one must be dead after the test). */
export function actorPids(session: ShoalSession): number[] {
  const pids = session.actorPids();
  for (const pid of pids) seenPids.add(pid);
  return pids;
}

/** Remembers a pid that must be dead after the test. */
export function remember(pid: number): void {
  seenPids.add(pid);
}

/** Whether a process with this pid exists (signal 0; ESRCH means gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** The parent pid of a live process, from /proc. */
export function parentPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which is in parentheses and may contain spaces).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[1]);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds; fails after `timeoutMs` (a liveness bound, not a timing assertion). */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = LIVENESS_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(20);
  }
}

/** A fresh temporary directory for marker files, removed by {@link cleanUp}. */
export function markerDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'shoal-runtime-test-'));
  directories.add(directory);
  return directory;
}

/** Waits for a file to appear in `directory` whose name starts with `prefix`, not in `exclude`. */
export async function nextFile(directory: string, prefix: string, exclude: ReadonlySet<string> = new Set()): Promise<string> {
  let found: string | undefined;
  await until(() => {
    found = readdirSync(directory).find((name) => name.startsWith(prefix) && !exclude.has(name));
    return found !== undefined;
  }, `a file ${prefix}* in ${directory}`);
  return found!;
}

/**
 * After each test: shuts Shoal down (twice: it is idempotent), then checks that every worker
 * process seen during the test is gone and that the session directories were removed.
 */
export async function cleanUp(): Promise<void> {
  for (const session of sessions) {
    try {
      workerPids(session);
    } catch {
      // Already shut down.
    }
  }
  await shutdown();
  await shutdown();
  const pids = [...seenPids];
  const sessionDirectories = [...directories].filter((directory) => directory.startsWith('/dev/shm/'));
  const markers = [...directories].filter((directory) => !directory.startsWith('/dev/shm/'));
  sessions.clear();
  seenPids.clear();
  directories.clear();
  for (const directory of markers) rmSync(directory, { recursive: true, force: true });
  await until(() => pids.every((pid) => !isAlive(pid)), `worker processes ${pids.join(', ')} to be gone after shutdown()`);
  for (const directory of sessionDirectories) assert.ok(!existsSync(directory), `${directory} is removed by shutdown()`);
  // Also sessions a test started without start() (by using Shoal before init()).
  assert.deepEqual(ownSessionDirectories(), [], 'no session directory of this process is left');
}

/** Session directories in /dev/shm owned by this process (others may run Shoal concurrently). */
export function ownSessionDirectories(): string[] {
  return readdirSync('/dev/shm').filter((name) => {
    if (!name.startsWith('shoal-')) return false;
    try {
      return (JSON.parse(readFileSync(join('/dev/shm', name, 'owner.json'), 'utf8')) as { pid: number }).pid === process.pid;
    } catch {
      return false;
    }
  });
}
