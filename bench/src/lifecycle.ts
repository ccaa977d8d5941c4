// Start-up and clean-up plumbing shared by the suites of main.ts: whatever a suite starts (pools,
// child processes, Shoal sessions, files) is registered here as it starts, so it is stopped or
// removed when the suite ends, fails, or the process is interrupted.
import { rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** Async closers, run in reverse order of registration; one failing does not stop the others. */
export class Scope {
  #closers: (() => Promise<void> | void)[] = [];

  defer(close: () => Promise<void> | void): void {
    this.#closers.push(close);
  }

  async close(): Promise<void> {
    const closers = this.#closers.reverse();
    this.#closers = [];
    for (const close of closers) {
      try {
        await close();
      } catch (error) {
        process.stderr.write(`while shutting down: ${String(error)}\n`);
      }
    }
  }
}

// ---- files removed even on process.exit() or a signal ----------------------------------------

const filesToRemove = new Set<string>();
const childrenToKill = new Set<ChildProcess>();

function removeNow(path: string): void {
  try {
    rmSync(path, { force: true, recursive: true });
  } catch {
    // Best effort at exit; the path is named in the docs (shoal-bench-*).
  }
}

process.on('exit', () => {
  for (const path of filesToRemove) removeNow(path);
  // Forked children exit by themselves when their IPC channel closes; spawned ones may not.
  for (const child of childrenToKill) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Registers `path` for removal at exit; returns a function that removes it now. */
export function removeAtExit(path: string): () => void {
  filesToRemove.add(path);
  return () => {
    filesToRemove.delete(path);
    removeNow(path);
  };
}

/** Kills `child` at exit if it is still running; returns a function that stops it now and waits. */
export function killAtExit(child: ChildProcess): () => Promise<void> {
  childrenToKill.add(child);
  return async () => {
    childrenToKill.delete(child);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill();
    await exited;
  };
}

/**
 * Ends the process on SIGINT, SIGTERM and SIGHUP through process.exit, so the 'exit' hooks run
 * (these files and children, and Shoal's own session clean-up and worker kill).
 */
export function exitOnSignals(): void {
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  for (const [signal, code] of Object.entries(codes)) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping\n`);
      process.exit(code);
    });
  }
}
