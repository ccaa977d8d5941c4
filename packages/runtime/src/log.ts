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
