// Starting, waiting for and stopping a machine's daemon (what `shoal start` and `shoal stop` do).
// Nothing here polls: readiness is the daemon's own message over an IPC channel, and its exit is
// the close of a connection to its lifeline socket (home.ts), which only the kernel closes.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { closeSync, openSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { lastWords } from './daemon-log.js';
import type { DaemonConfig } from './daemon-options.js';
import { isRunning, lifelinePath, liveDaemon, logPath, removeDaemon, type DaemonInfo } from './home.js';

/** The daemon's entry module: `node <DAEMON_ENTRY>` with SHOAL_DAEMON_CONFIG set runs a daemon. */
// Resolved through the package's exports, not next to this file: the build bundles this module
// into a chunk elsewhere in dist/ (scripts/bundle-dist.mjs).
export const DAEMON_ENTRY: string = createRequire(import.meta.url).resolve('@shoal/runtime/process/daemon');

/** What a daemon tells the process that started it, once, over the IPC channel. */
export type DaemonMessage = { readonly type: 'ready'; readonly info: DaemonInfo };

/** How {@link startDaemon} ended: the daemon serves, exited first, or took too long (and was stopped). */
export type DaemonStart =
  | { readonly kind: 'ready'; readonly info: DaemonInfo }
  | { readonly kind: 'exited'; readonly code: number | null; readonly lastWords: string }
  | { readonly kind: 'timeout'; readonly timeoutMs: number };

/** How {@link stopDaemon} ended: no daemon ran, or it was stopped (`killed`: SIGTERM was not enough). */
export type DaemonStop = { readonly kind: 'none' } | { readonly kind: 'stopped'; readonly info: DaemonInfo; readonly killed: boolean };

/** How long a SIGKILLed daemon may take to be gone before `stopDaemon` stops waiting. */
const KILL_WAIT_MS = 5000;
/** How long a daemon may take to serve (a joiner's `joinTimeoutMs` is added). */
export const DAEMON_START_TIMEOUT_MS = 30_000;

const daemonEnv = (config: DaemonConfig) => ({ ...process.env, SHOAL_DAEMON_CONFIG: JSON.stringify(config) });

/**
 * Starts a daemon in the background, detached from this process (it outlives it), with its
 * stdout and stderr appended to `$SHOAL_HOME/daemon.log`; resolves once it serves, or with why
 * it did not (its exit code and last log message).
 * @example
 * const started = await startDaemon({ home, token, head: { host: '127.0.0.1', port: 0 } });
 * if (started.kind === 'ready') console.log(started.info.head);
 */
export function startDaemon(config: DaemonConfig, options: { readonly timeoutMs?: number } = {}): Promise<DaemonStart> {
  // A joiner may wait that long for its head before it serves: the wait is on top.
  const timeoutMs = options.timeoutMs ?? DAEMON_START_TIMEOUT_MS + (config.head ? 0 : (config.joinTimeoutMs ?? 0));
  const log = openSync(logPath(config.home), 'a', 0o600);
  let daemon;
  try {
    daemon = spawn(process.execPath, [DAEMON_ENTRY], { detached: true, stdio: ['ignore', log, log, 'ipc'], env: daemonEnv(config) });
  } finally {
    closeSync(log);
  }
  // Only the timer below keeps this process waiting: once it resolves, nothing ties it to the daemon.
  daemon.unref();
  return new Promise((resolve) => {
    const finish = (result: DaemonStart) => {
      clearTimeout(timer);
      daemon.removeAllListeners();
      if (daemon.connected) daemon.disconnect();
      resolve(result);
    };
    const timer = setTimeout(() => {
      daemon.kill('SIGTERM');
      finish({ kind: 'timeout', timeoutMs });
    }, timeoutMs);
    daemon.on('message', (message: DaemonMessage) => {
      if (message.type === 'ready') finish({ kind: 'ready', info: message.info });
    });
    daemon.once('exit', (code) => finish({ kind: 'exited', code, lastWords: lastWords(config.home, daemon.pid) }));
    daemon.once('error', (error) => finish({ kind: 'exited', code: null, lastWords: error.message }));
  });
}

/**
 * Runs a daemon in the foreground (containers, supervisors): its output is this process's, and
 * SIGINT/SIGTERM sent here are passed on. Resolves with its exit code.
 * @example
 * process.exit(await runDaemon({ home, token, join: 'ws://10.0.0.1:6380' }));
 */
export async function runDaemon(config: DaemonConfig): Promise<number> {
  const daemon = spawn(process.execPath, [DAEMON_ENTRY], { stdio: 'inherit', env: daemonEnv(config) });
  const forward = (signal: NodeJS.Signals) => daemon.kill(signal);
  process.on('SIGINT', forward).on('SIGTERM', forward);
  try {
    const [code] = (await once(daemon, 'exit')) as [number | null];
    return code ?? 1;
  } finally {
    process.off('SIGINT', forward).off('SIGTERM', forward);
  }
}

/** A connection to the daemon's lifeline, or undefined when it has none (it is already exiting). */
function openLifeline(home: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect(lifelinePath(home));
    socket.once('connect', () => resolve(socket));
    socket.once('error', () => resolve(undefined));
  });
}

/** Resolves true when `closed` settles within `ms`, false when the time ran out first. */
async function within(closed: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([closed.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once process `pid` (not a child of this one) no longer runs; checks every 50 ms. */
async function gone(pid: number): Promise<void> {
  while (isRunning(pid)) await delay(50);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

/**
 * Stops the daemon running for `home`: SIGTERM (it stops its workers, frees its objects and
 * removes its session directory), then SIGKILL if it is still there after `graceMs`. Resolves
 * once its process has exited.
 * @example
 * const stopped = await stopDaemon(shoalHome());
 */
export async function stopDaemon(home: string, options: { readonly graceMs?: number } = {}): Promise<DaemonStop> {
  const info = liveDaemon(home);
  if (!info) return { kind: 'none' };
  const lifeline = await openLifeline(home);
  lifeline?.on('error', () => {});
  lifeline?.resume();
  // The lifeline's close is the exit. A daemon without one (started by an older Shoal, or one
  // already closing it) can only be watched: its pid is checked until it is gone.
  const exited = lifeline ? new Promise<void>((resolve) => lifeline.once('close', () => resolve())) : gone(info.pid);
  signal(info.pid, 'SIGTERM');
  let killed = false;
  if (!(await within(exited, options.graceMs ?? 15_000))) {
    signal(info.pid, 'SIGKILL');
    killed = true;
    await within(exited, KILL_WAIT_MS);
  }
  // A daemon that had to be killed left them behind.
  removeDaemon(home);
  if (killed) rmSync(lifelinePath(home), { force: true });
  return { kind: 'stopped', info, killed };
}
