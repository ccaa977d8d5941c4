// A legitimate driver running tasks one after another while a test attacks the cluster (the
// `steady` mode of fixtures/cluster-cross.ts: tasks on another node, their argument pulled from
// the driver's node), and a monitor of this process's event loop (where the head and nodes run).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DRIVER = fileURLToPath(new URL('../fixtures/cluster-cross.ts', import.meta.url));

/** What the driver saw: tasks with the right result, failures, and the slowest task after the first (the longest gap between two completions). */
export interface SteadyRun {
  readonly ok: number;
  readonly failures: readonly string[];
  readonly slowestMs: number;
}

/** A steady driver attached at `address`, once its first task ran; `finish()` stops it and reads its run; `[Symbol.asyncDispose]` kills it if still running. */
export async function startSteadyDriver(address: string): Promise<AsyncDisposable & { finish(): Promise<SteadyRun> }> {
  const directory = mkdtempSync(join(tmpdir(), 'shoal-steady-'));
  const stop = join(directory, 'stop');
  const driver = spawn(process.execPath, ['--import', 'tsx', DRIVER, address, 'steady', stop]);
  let out = '';
  let err = '';
  driver.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  driver.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => driver.once('exit', resolve));
  const dispose = async () => {
    if (driver.exitCode === null && driver.signalCode === null) driver.kill('SIGKILL');
    await exited;
    rmSync(directory, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      driver.stdout.on('data', () => (out.includes('running\n') ? resolve() : undefined));
      void exited.then((code) => reject(new Error(`the driver exited with ${code} before running: ${err}`)));
    });
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    async finish() {
      writeFileSync(stop, '');
      const code = await exited;
      if (code !== 0) throw new Error(`the steady driver exited with ${code}: ${err}`);
      return JSON.parse(out.slice(out.indexOf('\n') + 1)) as SteadyRun;
    },
    [Symbol.asyncDispose]: dispose,
  };
}

/** The longest gap between ticks of a 10 ms timer in this process (where the head and nodes run). */
export function eventLoopMonitor(): { stop(): number } {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return longest;
    },
  };
}
