// What the cluster tests share: running the `shoal` CLI with a SHOAL_HOME, reading a home's
// daemon.json, and probing how a server closes a raw WebSocket.
import { AssertionError } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRunning } from '@shoal/runtime';
import { sweepStaleSessions } from '@shoal/store';
import { WebSocket } from 'ws';
import { isAlive, until } from './runtime-helpers.js';

export const CLI = fileURLToPath(new URL('../packages/shoal/dist/cli.js', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `shoal <args>` with `home` as SHOAL_HOME (and a short heartbeat timeout for the head). */
export function shoal(home: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, SHOAL_HOME: home, SHOAL_HEARTBEAT_TIMEOUT_MS: '1500', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

export interface Daemon {
  pid: number;
  /** The node's unix address. */
  address: string;
  /** The head's ws:// address. */
  head: string;
  /** The node's id (its session id). */
  nodeId: string;
}

/**
 * Starts a head daemon (1 CPU) in `homeA` and a node (1 CPU, `{ gpu: 1 }`) joining it in `homeB`,
 * so tasks that need a gpu run on the second one; their pids go to `pids` (for withHomes).
 * @throws AssertionError when either does not start (with the CLI's stderr).
 */
export async function startHeadAndGpuNode(homeA: string, homeB: string, pids: number[]): Promise<{ head: Daemon; gpuNode: Daemon }> {
  const started = await shoal(homeA, ['start', '--head', '--port', '0', '--num-cpus', '1']);
  if (started.code !== 0) throw new AssertionError({ message: `the head did not start: ${started.stderr}` });
  const head = daemonOf(homeA);
  pids.push(head.pid);
  const token = readFileSync(join(homeA, 'token'), 'utf8').trim();
  const joined = await shoal(homeB, ['start', '--address', head.head, '--token', token, '--num-cpus', '1', '--resources', '{"gpu":1}']);
  if (joined.code !== 0) throw new AssertionError({ message: `the gpu node did not join: ${joined.stderr}` });
  const gpuNode = daemonOf(homeB);
  pids.push(gpuNode.pid);
  return { head, gpuNode };
}

/**
 * Whether process `pid` has exited: gone, or a zombie (the runtime's `isRunning` counts zombies
 * as exited). A stopped daemon's parent is init, which collects its exit status when it gets to
 * it; until then `kill(pid, 0)` still finds it.
 */
export const hasExited = (pid: number): boolean => !isRunning(pid);

export const daemonOf = (home: string): Daemon => JSON.parse(readFileSync(join(home, 'daemon.json'), 'utf8')) as Daemon;

/** Opens a raw connection with `token`, sends `frames`; resolves with the close code the server chose. */
export function closeCodeFor(url: string, token: string, frames: (Buffer | string)[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, headers: { 'x-shoal-token': token } });
    socket.once('open', () => frames.forEach((frame) => socket.send(frame)));
    socket.once('close', (code) => resolve(code));
    socket.once('error', (error) => {
      if (socket.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

/** Runs a TypeScript program (through tsx) with `env` added; resolves when it exits. */
export function runProgram(script: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `body` with fresh SHOAL_HOMEs; after, stops their daemons (killing those that stay, stopped ones too), sweeps their sessions and removes the homes. */
export async function withHomes(count: number, body: (homes: string[], pids: number[]) => Promise<void>): Promise<void> {
  const homes = Array.from({ length: count }, (_, index) => mkdtempSync(join(tmpdir(), `shoal-home-${index}-`)));
  const pids: number[] = [];
  try {
    await body(homes, pids);
  } finally {
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGCONT');
    for (const home of homes) await shoal(home, ['stop']);
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await until(() => pids.every((pid) => !isAlive(pid)), 'the daemons to be gone');
    sweepStaleSessions('/dev/shm');
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  }
}
