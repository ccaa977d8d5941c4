import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./fixtures/child.ts', import.meta.url));
const TIMEOUT_MS = 60_000;

/** A child Node process running fixtures/child.ts; killed on dispose if still running. */
export class Child implements AsyncDisposable {
  readonly process: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[]) {
    // 'shoal-test-child' marks the process so the test runner can find strays.
    this.process = fork(CHILD, [...args, 'shoal-test-child'], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  /** The next IPC message, or a rejection if the child exits or takes too long. */
  message<T>(): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('child did not answer in time')), TIMEOUT_MS);
      const onMessage = (message: unknown) => {
        clearTimeout(timer);
        this.process.off('exit', onExit);
        resolve(message as T);
      };
      const onExit = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        this.process.off('message', onMessage);
        reject(new Error(`child exited (code ${code}, signal ${signal}) before answering`));
      };
      this.process.once('message', onMessage);
      this.process.once('exit', onExit);
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * Runs `check` after forcing garbage collections until it holds, or fails after `attempts`.
 */
// A liveness bound, not a timing claim: it returns as soon as `check` holds. 50 attempts (0.5 s)
// was too short for a finalizer on a loaded 2-core machine (a GC-driven store test failed once).
export async function eventually(check: () => boolean, what: string, attempts = 500): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 10));
    if (check()) return;
  }
  throw new Error(`Timed out waiting for: ${what}`);
}

/** Session directories in /dev/shm. */
export function sessionDirectories(): string[] {
  return readdirSync('/dev/shm').filter((name) => name.startsWith('shoal-'));
}

/** A port nothing listens on (it did a moment ago). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export { existsSync };
