import type { WireTaskOptions } from '@shoal/protocol';

/** Resource amounts by name; `CPU` is the CPU count, the rest are custom resources. */
export type Resources = Record<string, number>;

/**
 * Slack in every comparison: fractional demands (`numCpus: 0.1` ten times) must add up to a
 * whole CPU despite floating-point error.
 */
const EPSILON = 1e-9;

/** What a task needs to run: its CPUs plus its custom resources. */
export function demandOf(options: Pick<WireTaskOptions, 'numCpus' | 'resources'>): Resources {
  return { CPU: options.numCpus, ...options.resources };
}

/** Whether every amount `demand` asks for is offered by `offered` (amounts ≤ 0 ask for nothing). */
export function fits(demand: Readonly<Resources>, offered: Readonly<Resources>): boolean {
  for (const name in demand) {
    const amount = demand[name]!;
    if (amount > 0 && amount > (offered[name] ?? 0) + EPSILON) return false;
  }
  return true;
}

/** The first resource of `demand` that `offered` lacks, with both amounts (for error messages). */
export function shortfall(
  demand: Readonly<Resources>,
  offered: Readonly<Resources>,
): { name: string; amount: number; offered: number } | undefined {
  for (const name in demand) {
    const amount = demand[name]!;
    if (amount > 0 && amount > (offered[name] ?? 0) + EPSILON) return { name, amount, offered: offered[name] ?? 0 };
  }
  return undefined;
}

/** Takes `demand` out of `available` (which may go negative: lending oversubscribes for a while). */
export function acquire(available: Resources, demand: Readonly<Resources>): void {
  for (const name in demand) available[name] = (available[name] ?? 0) - demand[name]!;
}

/** Gives `demand` back to `available`. */
export function giveBack(available: Resources, demand: Readonly<Resources>): void {
  for (const name in demand) available[name] = (available[name] ?? 0) + demand[name]!;
}

/** Whether two demands ask for exactly the same amounts of the same resources. */
export function sameDemand(a: Readonly<Resources> | undefined, b: Readonly<Resources>): boolean {
  if (!a) return false;
  const keys = Object.keys(b);
  return keys.length === Object.keys(a).length && keys.every((key) => a[key] === b[key]);
}

/** `CPU 2, gpu 1`: resource amounts as error messages show them. */
export function describeResources(resources: Readonly<Resources>): string {
  return Object.entries(resources).map(([name, amount]) => `${name} ${amount}`).join(', ') || 'nothing';
}
