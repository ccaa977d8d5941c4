// Reading a log file of JSON lines from its end, or from where a reader got to (`shoal logs`,
// `/api/logs` on a node's data port, a daemon's last words).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { NodeLog } from '@shoal/protocol';

/** The most read of a log at once: lines are short, logs can be long. */
export const LOG_READ_BYTES = 1024 * 1024;

/** Lines of a log, and the offset after the last of them (where to read on from). */
export interface LogLines {
  readonly lines: string[];
  readonly end: number;
}

/**
 * The complete lines of the log at `path`: from byte `after` on when given (at most
 * {@link LOG_READ_BYTES}: read on from `end`), else its last `lines` lines (all when not given)
 * within its last `within` bytes (default {@link LOG_READ_BYTES}). A line still being written (no
 * newline yet) is left for the next read, unless `partial` (the last words of a process that
 * died mid-line; `end` still stops before it).
 * A log that shrank (rotated, truncated) is read from its start.
 * @throws the file system's error (ENOENT: no log yet).
 */
export function readLog(path: string, from: { readonly after?: number; readonly lines?: number; readonly within?: number; readonly partial?: boolean }): LogLines {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const after = from.after !== undefined && from.after <= size ? Math.max(0, from.after) : undefined;
    const start = after ?? Math.max(0, size - Math.min(from.within ?? LOG_READ_BYTES, LOG_READ_BYTES));
    const length = Math.min(size - start, LOG_READ_BYTES);
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, start);
    const complete = buffer.lastIndexOf(0x0a, read - 1) + 1;
    // From `after`, a line longer than a whole read is given in pieces: else a follower would ask
    // for the same offset again and again and never get past it.
    if (after !== undefined && complete === 0 && read === LOG_READ_BYTES) return { lines: [buffer.toString('utf8', 0, read)], end: start + read };
    let lines = buffer.toString('utf8', 0, from.partial ? read : complete).split('\n');
    if (!from.partial || complete === read) lines.pop();
    // Read from the middle of the file: its first line is cut.
    if (after === undefined && start > 0) lines = lines.slice(1);
    if (after === undefined && from.lines !== undefined) lines = from.lines > 0 ? lines.slice(-from.lines) : [];
    return { lines, end: start + complete };
  } finally {
    closeSync(fd);
  }
}

/** Lines given at most per request of `/api/logs`, and when not told how many. */
const MOST_LINES = 10_000;
const DEFAULT_LINES = 200;

/**
 * What `/api/logs` on a node's data port answers: `?after=OFFSET`, the lines from there on (to
 * follow the log); else `?lines=N`, its last N (default 200, at most 10,000). A node that logs to
 * no file, or whose file is not there yet, has no lines.
 */
export function nodeLog(file: string | undefined, url: URL): NodeLog {
  if (file === undefined) return { file: null, lines: [], end: 0 };
  const after = url.searchParams.get('after');
  // A count that is not one (`?lines=all`) is the default, as if none were given.
  const asked = Math.trunc(Number(url.searchParams.get('lines') ?? DEFAULT_LINES));
  const lines = Number.isFinite(asked) && asked >= 0 ? Math.min(MOST_LINES, asked) : DEFAULT_LINES;
  try {
    const read = readLog(file, after === null ? { lines } : { after: Math.max(0, Number(after) || 0) });
    return { file, lines: read.lines, end: read.end };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { file, lines: [], end: 0 };
    throw error;
  }
}
