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

export function readToken(home: string): string | undefined {
  try {
    return readFileSync(file(home, 'token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function writeToken(home: string, token: string): void {
  writePrivate(file(home, 'token'), `${token}\n`);
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
