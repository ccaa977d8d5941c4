import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * A machine's Shoal state directory (`SHOAL_HOME`, default `~/.shoal`): the token, the running
 * daemon's description and its log. Two daemons may run on one machine when each has its own home.
 */
export interface DaemonInfo {
  readonly pid: number;
  /** The node's unix address: processes of this machine attach there. */
  readonly address: string;
  /** The head this node belongs to. */
  readonly head: string;
  /** Whether this daemon runs the head too. */
  readonly isHead: boolean;
  readonly nodeId: string;
}

export function shoalHome(explicit?: string): string {
  return explicit ?? process.env.SHOAL_HOME ?? join(homedir(), '.shoal');
}

export function ensureHome(home: string): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
}

const file = (home: string, name: string) => join(home, name);

/** Writes a file readable by this user only, atomically. */
export function writePrivate(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, path);
}

/**
 * Which stored token: the one this machine's head made or was given (`token`, reused when the
 * head starts again), or the one this machine last joined a cluster with (`joined-token`). They
 * are kept apart so that joining with a mistyped token cannot replace the head's.
 */
export type TokenKind = 'head' | 'joined';

const TOKEN_FILES: Readonly<Record<TokenKind, string>> = { head: 'token', joined: 'joined-token' };

/**
 * A stored token: of `kind`, or by default the one of the cluster this machine's daemon belongs
 * to (the joined one first when the daemon description says it is no head), else either.
 */
export function readToken(home: string, kind?: TokenKind): string | undefined {
  const order: readonly TokenKind[] = kind ? [kind] : readDaemon(home)?.isHead === false ? ['joined', 'head'] : ['head', 'joined'];
  for (const which of order) {
    try {
      const token = readFileSync(file(home, TOKEN_FILES[which]), 'utf8').trim();
      if (token) return token;
    } catch {
      // Not stored: the next kind.
    }
  }
  return undefined;
}

/** Stores `token` as this machine's token of `kind` (mode 0600). */
export function writeToken(home: string, token: string, kind: TokenKind = 'head'): void {
  writePrivate(file(home, TOKEN_FILES[kind]), `${token}\n`);
}

export function readDaemon(home: string): DaemonInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(file(home, 'daemon.json'), 'utf8')) as DaemonInfo;
    return typeof info.pid === 'number' ? info : undefined;
  } catch {
    return undefined;
  }
}

export function writeDaemon(home: string, info: DaemonInfo): void {
  writePrivate(file(home, 'daemon.json'), JSON.stringify(info));
}

export function removeDaemon(home: string): void {
  rmSync(file(home, 'daemon.json'), { force: true });
}

/**
 * The daemon's lifeline: a unix socket it listens on for as long as it lives. Its connections
 * close only when the daemon's process exits (the kernel closes its descriptors), which is how
 * `shoal stop` learns that the daemon is gone without polling its pid.
 */
export function lifelinePath(home: string): string {
  return file(home, 'daemon.sock');
}

export function logPath(home: string): string {
  return file(home, 'daemon.log');
}

/**
 * Whether process `pid` runs. A zombie does not: it has exited and only waits for its parent
 * (for a daemon, init) to collect its status, which can come a while after its exit.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may itself hold some.
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** The daemon running for `home`, if one does; a daemon.json whose process is gone is removed. */
export function liveDaemon(home: string): DaemonInfo | undefined {
  const info = readDaemon(home);
  if (info && isRunning(info.pid)) return info;
  if (info) removeDaemon(home);
  return undefined;
}
