// Helpers shared by tasks.ts and seed.ts: flags, statistics, the stdout table, machine info and
// the JSON result file. (store-put-get.ts predates this file and keeps its own copies.)
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

export const gc = (globalThis as { gc?: () => void }).gc;

/** Collects garbage before a timed phase, so one phase's garbage is not collected in the next. */
export function settle(): void {
  gc?.();
}

export const progress = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

// ---- flags ---------------------------------------------------------------------------------

/**
 * Reads `--quick`, `--runs=N` and the integer flags named in `ints` (`--name=N` or `--name N`,
 * `_` separators allowed). Unknown flags are an error that lists the known ones, so a typo never
 * silently runs the default (which can take minutes).
 */
export function parseFlags<K extends string>(
  argv: readonly string[],
  ints: readonly K[],
): { quick: boolean; runs: number | undefined } & Record<K, number | undefined> {
  const names = ['runs', ...ints];
  const known = ['--quick', ...names.map((name) => `--${name}=N`)].join(', ');
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { quick: { type: 'boolean' }, ...Object.fromEntries(names.map((name) => [name, { type: 'string' as const }])) },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new Error(`${(error as Error).message.replace(/\.$/, '')}; known: ${known}`, { cause: error });
  }
  const values: Record<string, number | undefined> = {};
  for (const name of names) {
    const text = (parsed.values as Record<string, string | boolean | undefined>)[name];
    if (typeof text !== 'string') continue;
    const value = Number(text.replaceAll('_', ''));
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`Expected --${name}=N with N >= 1, got \`--${name}=${text}\``);
    values[name] = value;
  }
  return { ...(values as Record<K, number | undefined>), quick: parsed.values.quick === true, runs: values['runs'] };
}

// ---- statistics ----------------------------------------------------------------------------

export interface Stats {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

/** Nearest-rank percentile (p in 0..1) of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: median(sorted), min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN, samples: [...samples] };
}

/**
 * The order of contenders in run `run`: rotated by one each run, so that on a noisy 2-core
 * machine every contender goes first (warmest caches, calmest heap) equally often.
 */
export function rotate<T>(items: readonly T[], run: number): T[] {
  const by = items.length === 0 ? 0 : run % items.length;
  return [...items.slice(by), ...items.slice(0, by)];
}

// ---- output --------------------------------------------------------------------------------

/** About three significant digits, without exponents. */
export function fmt(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : abs >= 0.1 ? 3 : 4;
  return value.toFixed(digits);
}

/** A count with thousands separators (tasks/s and messages/s read better that way). */
export function fmtInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';
}

/** A plain-text table: first column left-aligned, the others right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function machine() {
  const list = cpus();
  return {
    cpu: list[0]?.model ?? 'unknown',
    cores: list.length,
    totalMemBytes: totalmem(),
    node: process.version,
    kernel: release(),
    gcExposed: gc !== undefined,
    // The machine is shared: the load when the run started says how much to trust it.
    loadAverage1mAtStart: loadavg()[0] ?? null,
  };
}

/** Writes bench/results/<name>.json and returns its path. */
export function writeResults(name: string, report: object): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}${name}.json`;
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
