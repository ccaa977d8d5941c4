// How much of the machine something else used while a phase ran: on a shared 2-core machine one
// busy neighbour halves the parallel rows (a trial run's 2-worker rows came out slower than the
// single-thread one), and nothing in the timings alone says so. Linux only (/proc); elsewhere the
// figures are NaN and nothing is claimed.
import { readFileSync } from 'node:fs';
import { treeTicks } from './proc.js';

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

export function cpuSnapshot(): CpuSnapshot {
  try {
    return { atMs: performance.now(), ...machineTicks(), ours: treeTicks([process.pid]) };
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
