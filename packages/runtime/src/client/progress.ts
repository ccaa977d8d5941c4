// Progress bars for long work a person waits on at a terminal: big puts and pulls (reported by
// the store's copies, see @shoal/store's copy-progress.ts) and `shoal start` waiting for a head.
import { createRequire } from 'node:module';
import { watchCopies, type CopyProgress } from '@shoal/store';

/** Objects smaller than this copy and pull without a bar. */
export const PROGRESS_MIN_BYTES = 2 ** 30;

const require = createRequire(import.meta.url);
const MIB = 2 ** 20;

/** A stream a bar may be drawn on: a terminal. */
export interface ProgressStream extends NodeJS.WritableStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/**
 * Whether bars are drawn on `stream`: a terminal, not in CI, and not switched off with
 * `SHOAL_PROGRESS=0`.
 */
export function progressWanted(stream: ProgressStream = process.stderr, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.CI && env.SHOAL_PROGRESS !== '0';
}

/**
 * A bar of `total` units on `stream` (cli-progress, loaded only now): `update(done)` moves it,
 * `stop()` clears the line.
 */
export function progressBar(label: string, total: number, unit: string, stream: ProgressStream = process.stderr): { update(done: number): void; stop(): void } {
  const { SingleBar } = require('cli-progress') as typeof import('cli-progress');
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {eta_formatted} left`,
    stream: stream as NodeJS.WritableStream,
    clearOnComplete: true,
    hideCursor: false,
    etaBuffer: 20,
    fps: 10,
    noTTYOutput: false,
  });
  bar.start(total, 0);
  return { update: (done) => bar.update(done), stop: () => bar.stop() };
}

/**
 * Shows a bar on `stream` (stderr: stdout stays the program's) for each put of an object of at
 * least {@link PROGRESS_MIN_BYTES} into the store and each pull of one from another node, when
 * {@link progressWanted}. `init()` calls it; returns whether bars will be shown.
 */
export function showCopyProgress(stream: ProgressStream = process.stderr, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!progressWanted(stream, env)) {
    watchCopies(undefined);
    return false;
  }
  watchCopies((what, total): CopyProgress | undefined => {
    if (total < PROGRESS_MIN_BYTES) return undefined;
    const mebibytes = Math.ceil(total / MIB);
    const bar = progressBar(what === 'put' ? 'shoal: storing' : 'shoal: pulling', mebibytes, 'MiB', stream);
    let done = 0;
    return {
      advance(bytes) {
        done += bytes;
        bar.update(done >= total ? mebibytes : Math.floor(done / MIB));
      },
      done: () => bar.stop(),
    };
  });
  return true;
}
