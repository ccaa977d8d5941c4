import { isIP } from 'node:net';
import { nonNegativeNumber, resourceMap, show } from '../../options.js';
import { argumentError } from '@shoal/protocol';

/** What a daemon runs: a node, joined to a head elsewhere (`join`) or to its own (`head`). */
export interface DaemonOptions {
  /** Run the cluster's head in this daemon, listening on `host:port` (port 0 picks a free one). */
  readonly head?: { readonly host: string; readonly port: number };
  /** The head to join, `ws://HOST:PORT`, when this daemon runs no head. */
  readonly join?: string;
  /** CPUs this node offers. @default the machine's CPU count */
  readonly numCpus?: number;
  /** Custom resources this node offers, e.g. `{ gpu: 1 }`. @default {} */
  readonly resources?: Readonly<Record<string, number>>;
  /** Bytes of this node's object store. @default 30% of RAM, at most what /dev/shm holds */
  readonly objectStoreMemory?: number;
  /**
   * Where this node's store spills objects when its memory is full (a directory on disk); `false`
   * turns spilling off. @default `/var/tmp/shoal-spill-<uid>`
   */
  readonly spillDirectory?: string | false;
  /** The IP other nodes pull this node's objects from. @default the address toward the head */
  readonly nodeIp?: string;
  /** Port of this node's object transfer server. @default 0 (any free port) */
  readonly dataPort?: number;
  /** The head removes a node silent for this long. @default 5000 */
  readonly heartbeatTimeoutMs?: number;
  /**
   * With `join`: keep trying a head that cannot be reached yet at start for this long, instead of
   * failing at once (nodes started together with their head, as in Kubernetes). @default 0
   */
  readonly joinTimeoutMs?: number;
  /**
   * Browser `Origin`s (`'https://dashboard.example'`) whose WebSocket upgrades the head and the
   * data server accept; an upgrade with any other `Origin` is refused (403), so a web page the
   * user opens cannot reach them. Shoal's own clients send none. @default []
   */
  readonly allowedOrigins?: readonly string[];
}

/** Everything a daemon process is started with: its options, its home and the cluster token. */
export interface DaemonConfig extends DaemonOptions {
  /** The state directory (`SHOAL_HOME`): token, daemon.json, daemon.log, daemon.sock. */
  readonly home: string;
  /** The cluster token. */
  readonly token: string;
}

/**
 * How an option is named in messages: `numCpus` to a program, `--num-cpus` to the CLI, so that
 * both see one rule with one message.
 */
export type OptionLabel = (key: keyof DaemonOptions | 'host' | 'port') => string;

function portNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be a port number (0-65535), got \`${show(value)}\``);
  }
  return value;
}

function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be a positive integer, got \`${show(value)}\``);
  }
  return value;
}

/** Origins as a browser sends them: scheme, host and port, no path (`new URL(o).origin === o`). */
function originList(name: string, value: unknown): readonly string[] {
  if (!Array.isArray(value)) throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be a list of origins, got \`${show(value)}\``);
  for (const origin of value) {
    let parsed: string | undefined;
    try {
      parsed = typeof origin === 'string' ? new URL(origin).origin : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed !== origin) throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be an origin like https://dashboard.example (scheme, host, port; no path), got \`${show(origin)}\``);
  }
  return value as string[];
}

/**
 * Validates a daemon's options, naming the bad one as `label` calls it, and returns them with
 * only the given keys (each daemon part applies its own defaults).
 * @example
 * resolveDaemonOptions({ join: 'ws://10.0.0.1:6380', numCpus: 4 });
 */
export function resolveDaemonOptions(options: DaemonOptions, label: OptionLabel = (key) => key): DaemonOptions {
  if ((options.head === undefined) === (options.join === undefined)) {
    throw argumentError('ERR_INVALID_ARGUMENT', 'Expected either `head` or `join`, not both or neither');
  }
  const given = <K extends keyof DaemonOptions, T>(key: K, check: (name: string, value: unknown) => T) =>
    options[key] === undefined ? {} : { [key]: check(label(key), options[key]) };
  let head: DaemonOptions['head'];
  if (options.head !== undefined) {
    const host = options.head.host;
    if (typeof host !== 'string' || host === '') throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${label('host')}\` to be a host name or IP, got \`${show(host)}\``);
    head = { host, port: portNumber(label('port'), options.head.port) };
  }
  if (options.join !== undefined && !(typeof options.join === 'string' && /^wss?:\/\/[^/]+$/.test(options.join))) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${label('join')}\` to be a head address like ws://HOST:PORT, got \`${show(options.join)}\``);
  }
  return {
    ...(head === undefined ? { join: options.join } : { head }),
    ...given('numCpus', (name, value) => nonNegativeNumber(name, value, false)),
    ...given('resources', resourceMap),
    ...given('objectStoreMemory', positiveInteger),
    ...given('spillDirectory', (name, value) => {
      if (value === false || (typeof value === 'string' && value.startsWith('/'))) return value;
      throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be an absolute path (or false to turn spilling off), got \`${show(value)}\``);
    }),
    ...given('nodeIp', (name, value) => {
      if (typeof value !== 'string' || isIP(value) === 0) throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${name}\` to be an IP address, got \`${show(value)}\``);
      return value;
    }),
    ...given('dataPort', portNumber),
    ...given('heartbeatTimeoutMs', positiveInteger),
    ...given('joinTimeoutMs', (name, value) => nonNegativeNumber(name, value, true)),
    ...given('allowedOrigins', originList),
  };
}
