import { createRequire } from 'node:module';
import { isatty } from 'node:tty';
import { debuglog } from 'node:util';

/** One log call: structured fields, then a sentence a person reads. */
export type LogFn = (fields: Readonly<Record<string, unknown>>, message: string) => void;

/**
 * Where the head, the daemon and the cluster node report what an operator should see (a node
 * joined, a connection refused). The shape is pino's, so a pino logger can be passed as is;
 * without one, lines go to `NODE_DEBUG=shoal:<section>`.
 */
export interface Logger {
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
}

/** A {@link Logger} that writes through `util.debuglog('shoal:<section>')`. */
export function debugLogger(section: string): Logger {
  const debug = debuglog(`shoal:${section}`);
  const write =
    (level: string): LogFn =>
    (fields, message) => {
      if (!debug.enabled) return;
      const extra = Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
      debug(`${level} ${message}${extra}`);
    };
  return { info: write('info'), warn: write('warn'), error: write('error') };
}

/** How a person reads log lines on a terminal: pino-pretty's options, shared by processes and `shoal logs`. */
export const PRETTY_OPTIONS = {
  translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
  ignore: 'hostname,component',
  messageFormat: '{if component}{component}: {end}{msg}',
  singleLine: true,
} as const;

const require = createRequire(import.meta.url);

/**
 * The logger of a Shoal process (the daemon with its head and node, a worker): pino, writing
 * JSON lines to stderr synchronously (a line logged just before `process.exit` is written), each
 * with the process's `pid` and `component` (or each child's, `logger.child({ component })`); human-readable (pino-pretty) when stderr is a
 * terminal. pino is loaded on the first call, so processes that never log do not pay for it.
 *
 * @example
 * ```ts
 * const logger = processLogger('worker');
 * logger.warn({ err }, 'unhandled rejection in a task');
 * ```
 */
export function processLogger(component?: string): import('pino').Logger {
  const { pino } = require('pino') as typeof import('pino');
  const options = { base: component === undefined ? { pid: process.pid } : { pid: process.pid, component } };
  if (isatty(2)) {
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(options, pretty.build({ ...PRETTY_OPTIONS, colorize: true, destination: 2, sync: true }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/**
 * A function turning a JSON log line into the line a person reads (pino-pretty, loaded on the
 * first call; `colorize` for a terminal). A line that is not JSON comes back as it is.
 */
export function prettyLogLine(colorize: boolean): (line: string) => string {
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  const format = pretty.prettyFactory({ ...PRETTY_OPTIONS, colorize });
  return (line) => {
    const text = format(line);
    return typeof text === 'string' ? text.replace(/\n$/, '') : line;
  };
}
