// The machine's processes as /proc/<pid>/stat describes them (Linux), and the process trees the
// benchmarks account for: their own children, the daemons they start, a server's workers.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  readonly pid: number;
  /** One letter: R, S, D, Z (zombie), X (dead)... */
  readonly state: string;
  readonly ppid: number;
  /** utime + stime, in clock ticks (USER_HZ). */
  readonly cpuTicks: number;
  /** cpuTicks plus the reaped children's (cutime + cstime). */
  readonly treeCpuTicks: number;
}

/** One process's stat; undefined when it is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  return { pid, state: fields[0] ?? '?', ppid: Number(fields[1]), cpuTicks, treeCpuTicks: cpuTicks + Number(fields[13]) + Number(fields[14]) };
}

/** Every live process (zombies left out), by pid. */
export function processTable(): Map<number, ProcStat> {
  const table = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProcStat(Number(name));
    if (stat && stat.state !== 'Z' && stat.state !== 'X') table.set(stat.pid, stat);
  }
  return table;
}

/** `roots` that are alive, and every process below them, parents first. */
export function descendants(roots: readonly number[], table: Map<number, ProcStat> = processTable()): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const stat of table.values()) {
    const list = children.get(stat.ppid);
    if (list) list.push(stat);
    else children.set(stat.ppid, [stat]);
  }
  const tree = roots.flatMap((pid) => table.get(pid) ?? []);
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!.pid) ?? []));
  return tree;
}

/** CPU ticks (own and reaped children's) of `roots` and everything below them. */
export function treeTicks(roots: readonly number[]): number {
  return descendants(roots).reduce((total, stat) => total + stat.treeCpuTicks, 0);
}
