// How much of the machine something else used while a phase ran: on a shared 2-core machine one
// busy neighbour halves the parallel rows (a trial run's 2-worker rows came out slower than the
// single-thread one), and nothing in the timings alone says so. Linux only (/proc); elsewhere the
// figures are NaN and nothing is claimed.
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc/stat and /proc/<pid>/stat times (100 on every mainstream Linux). */
const TICKS_PER_SECOND = 100;

export interface CpuSnapshot {
  atMs: number;
  /** Busy ticks of the whole machine (user, nice, system, irq, softirq). */
  busy: number;
  /** Ticks the hypervisor gave to other guests while this one wanted to run. */
  steal: number;
  /** Busy ticks of this process and its descendants (reaped children included). */
  ours: number;
}

export interface Interference {
  /** Cores' worth of CPU used by processes outside this benchmark, on average over the phase. */
  otherCores: number;
  /** Cores' worth of CPU time stolen by the hypervisor. */
  stealCores: number;
}

function machineTicks(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).map(Number);
  return { busy: user + nice + system + irq + softirq, steal };
}

/** utime + stime + cutime + cstime of every process descending from (and including) this one. */
function ourTicks(): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command (which may hold spaces and parentheses): state is field 3.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      stats.set(Number(name), { ppid, ticks });
    } catch {
      // The process ended while we looked.
    }
  }
  const ours = new Set([process.pid]);
  // Parents before children is not guaranteed by pid order: repeat until nothing is added.
  for (let added = true; added; ) {
    added = false;
    for (const [pid, { ppid }] of stats) {
      if (!ours.has(pid) && ours.has(ppid)) {
        ours.add(pid);
        added = true;
      }
    }
  }
  let total = 0;
  for (const pid of ours) total += stats.get(pid)?.ticks ?? 0;
  return total;
}

export function cpuSnapshot(): CpuSnapshot {
  try {
    return { atMs: performance.now(), ...machineTicks(), ours: ourTicks() };
  } catch {
    return { atMs: performance.now(), busy: Number.NaN, steal: Number.NaN, ours: Number.NaN };
  }
}

export function interferenceBetween(start: CpuSnapshot, end: CpuSnapshot): Interference {
  const seconds = (end.atMs - start.atMs) / 1000;
  const cores = (ticks: number): number => Math.max(0, ticks / TICKS_PER_SECOND / seconds);
  return {
    otherCores: cores(end.busy - start.busy - (end.ours - start.ours)),
    stealCores: cores(end.steal - start.steal),
  };
}

/** Above this much of a core used by others (on average), a phase's figures are called disturbed. */
export const DISTURBED_CORES = 0.25;

export const isDisturbed = (i: Interference): boolean => i.otherCores > DISTURBED_CORES || i.stealCores > DISTURBED_CORES;
