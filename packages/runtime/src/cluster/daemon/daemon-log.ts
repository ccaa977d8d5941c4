// The daemon's log as its readers see it: JSON lines (pino's), one object per line with `pid`
// and `msg`. (The daemon creates the logger itself: pino stays out of the CLI's start-up.)
import { readLog } from '../../log-file.js';
import { logPath } from './home.js';

/** The message of the daemon's line announcing an orderly stop: not why it stopped. */
export const STOPPING_MESSAGE = 'stopping';

/** How much of the log's end is read for the last words: lines are short, logs can be long. */
const LAST_WORDS_BYTES = 64 * 1024;

/**
 * Why the daemon `pid` stopped, as a sentence: the message of its last JSON log line other than
 * its "stopping" line. The log is shared by every daemon of the home, hence the pid.
 */
export function lastWords(home: string, pid: number | undefined): string {
  let lines: string[];
  try {
    lines = readLog(logPath(home), { within: LAST_WORDS_BYTES, partial: true }).lines;
  } catch {
    return 'it left no log';
  }
  for (let index = lines.length - 1; index >= 0; index--) {
    let entry: { pid?: unknown; msg?: unknown };
    try {
      entry = JSON.parse(lines[index]!) as typeof entry;
    } catch {
      continue; // A cut first line, or text a crashing runtime wrote to stderr.
    }
    if (entry.pid === pid && typeof entry.msg === 'string' && entry.msg !== STOPPING_MESSAGE) return entry.msg;
  }
  return 'it said nothing';
}
