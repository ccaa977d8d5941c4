// Microbenchmark of the object store's put and get paths against plain in-process copies.
//
//   node --expose-gc bench/dist/store-put-get.js [--quick] [--sizes=1KB,16MB,1.5GB] [--runs=N]
//
// Per size and run, in the same process and run (so machine noise hits both sides alike):
//   put         store.put(arr) of a Float64Array        vs  arr.slice()
//   create+fill store.create + fill loop + seal         vs  new Float64Array(n) + the same loop
//   get         store.getSync(ref) once mapped (warm), and in a fresh child process the first
//               get, the first full read (page faults) and a second one.
// Prints a table, writes bench/results/store-put-get.json. Progress goes to stderr.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { shmStats } from '@shoal/shm';
import { init, shutdown, store, type ObjectRef } from 'shoal';
import type { ChildReport } from './get-in-child.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

const FULL_SIZES = [KiB, 64 * KiB, MiB, 16 * MiB, 128 * MiB, GiB, 1.5 * GiB];
const QUICK_SIZES = [KiB, 64 * KiB, MiB, 16 * MiB];
/** Warm gets per run: one get is a few µs, far below what a single timing can resolve. */
const WARM_GETS = 1000;

const CHILD_SCRIPT = fileURLToPath(new URL('./get-in-child.js', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

const gc = (globalThis as { gc?: () => void }).gc;
const execFileAsync = promisify(execFile);

// ---- options -------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  sizes: number[];
  /** Runs per size; undefined picks by size (see runsFor). */
  runs: number | undefined;
}

function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(text.trim());
  if (!match) throw new Error(`Cannot read size \`${text}\`; use e.g. 1KB, 64KB, 16MB, 1.5GB (binary units)`);
  const unit = (match[2] ?? 'b').toLowerCase()[0];
  const scale = unit === 'k' ? KiB : unit === 'm' ? MiB : unit === 'g' ? GiB : 1;
  const bytes = Math.floor((Number(match[1]) * scale) / 8) * 8;
  if (bytes < 8) throw new Error(`Size \`${text}\` is smaller than one Float64`);
  return bytes;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { quick: false, sizes: [], runs: undefined };
  let sizes: number[] | undefined;
  for (const arg of argv) {
    if (arg === '--quick') options.quick = true;
    else if (arg.startsWith('--sizes=')) sizes = arg.slice('--sizes='.length).split(',').map(parseSize);
    else if (arg.startsWith('--runs=')) {
      const runs = Number(arg.slice('--runs='.length));
      if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`Expected --runs=N with N >= 1, got \`${arg}\``);
      options.runs = runs;
    } else throw new Error(`Unknown argument \`${arg}\`; known: --quick, --sizes=1KB,16MB,..., --runs=N`);
  }
  options.sizes = sizes ?? (options.quick ? QUICK_SIZES : FULL_SIZES);
  return options;
}

/** Fewer runs for big sizes: a 1.5 GB run takes ~10 s here, and the full run should stay < 5 min. */
function runsFor(bytes: number, options: Options): number {
  if (options.runs !== undefined) return options.runs;
  if (options.quick) return 5;
  return bytes <= 16 * MiB ? 15 : 7;
}

/** Operations per timing, so a small size's timing spans more than the timer's resolution. */
function repsFor(bytes: number): number {
  return Math.max(1, Math.min(1000, Math.floor((16 * MiB) / bytes)));
}

// ---- helpers -------------------------------------------------------------------------------

function label(bytes: number): string {
  const [scale, unit] = bytes >= GiB ? [GiB, 'GB'] : bytes >= MiB ? [MiB, 'MB'] : bytes >= KiB ? [KiB, 'KB'] : [1, 'B'];
  return `${Number((bytes / scale).toFixed(2))} ${unit}`;
}

/** The same fill loop for both sides of create+fill; values stay small so sums are exact. */
function fill(array: Float64Array): void {
  for (let i = 0; i < array.length; i++) array[i] = i % 1024;
}

function sum(array: Float64Array): number {
  let total = 0;
  for (let i = 0; i < array.length; i++) total += array[i]!;
  return total;
}

/** Collects garbage before a timed phase, so one phase's garbage is not collected in the next. */
function settle(): void {
  gc?.();
}

/**
 * Lets the event loop turn around a GC. A segment mapping is only unmapped after both: the
 * store's WeakRef to it pins it until the current job ends, and the addon's unmap finalizer
 * runs from the event loop. Without this, a size's thousands of small segments stay mapped.
 */
async function releaseMappings(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  gc?.();
  await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Live mappings once unmapping has caught up: V8 releases backing stores from a background
 * sweeper after the GC, and the finalizer then waits for the event loop, so give it some time.
 */
async function settledMappings(): Promise<number> {
  let count = shmStats().mappings;
  for (let turn = 0; turn < 5; turn++) {
    await releaseMappings();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = shmStats().mappings;
    if (now === count) break;
    count = now;
  }
  return count;
}

interface Stats {
  median: number;
  min: number;
  samples: number[];
}

function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, samples: [...samples] };
}

/** About three significant digits, without exponents. */
function fmt(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : abs >= 0.1 ? 3 : 4;
  return value.toFixed(digits);
}

const progress = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

/** Whether put kept the object in this process's memory: it then has no segment file. */
function isInline(ref: ObjectRef): boolean {
  return !existsSync(join(store.stats().directory, ref.id));
}

// ---- one run -------------------------------------------------------------------------------

interface RunSample {
  /** Whether put kept the object inline (in this process's memory) rather than in a segment. */
  inline: boolean;
  putMs: number;
  sliceMs: number;
  createFillMs: number;
  newFillMs: number;
  /** The parent's first getSync of the put object: maps the segment (or decodes an inline one). */
  firstGetUs: number;
  /** Median of single warm gets. */
  warmGetUs: number;
  /** Mean warm get over the whole batch (timer overhead included). */
  warmGetMeanUs: number;
  child: ChildReport | undefined;
}

/** Times `reps` calls of `op` and returns ms per call; results are kept until timing ends. */
function timeEach<T>(reps: number, op: () => T): { ms: number; results: T[] } {
  const results: T[] = [];
  const started = performance.now();
  for (let r = 0; r < reps; r++) results.push(op());
  return { ms: (performance.now() - started) / reps, results };
}

async function runChild(ref: ObjectRef): Promise<ChildReport> {
  try {
    const { stdout } = await execFileAsync(process.execPath, [CHILD_SCRIPT, JSON.stringify(ref)], {
      timeout: 120_000,
    });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as ChildReport;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr;
    throw new Error(`the child reader failed${stderr ? `:\n${stderr}` : ''}`, { cause: error });
  }
}

async function runOnce(src: Float64Array, expectedSum: number, run: number, withChild: boolean): Promise<RunSample> {
  const n = src.length;
  const reps = repsFor(src.byteLength);
  // Alternate which side goes first, so neither always gets the warmer caches or the cleaner heap.
  const storeFirst = run % 2 === 0;

  let puts: ObjectRef<Float64Array>[] = [];
  let putMs = 0;
  let sliceMs = 0;
  const timePut = (): void => {
    settle();
    const timed = timeEach(reps, () => store.put(src));
    putMs = timed.ms;
    puts = timed.results;
  };
  const timeSlice = (): void => {
    settle();
    sliceMs = timeEach(reps, () => src.slice()).ms;
  };
  for (const phase of storeFirst ? [timePut, timeSlice] : [timeSlice, timePut]) phase();
  const ref = puts[0]!;
  const inline = isInline(ref);

  // Gets come before anything big is freed: on this VM, releasing a GB or more slows the whole
  // machine down for a while, which would swamp microsecond timings.
  let started = performance.now();
  const view = store.getSync(ref);
  const firstGetUs = (performance.now() - started) * 1000;
  if (view.length !== n || view[n - 1] !== src[n - 1]) {
    throw new Error(`get returned the wrong array for ${label(src.byteLength)}`);
  }
  // Each call timed on its own: the median shows the cost of a get, while the mean over the
  // batch also carries the GC pauses and scheduler hiccups that land inside it.
  const calls: number[] = [];
  let last = view;
  const batchStarted = performance.now();
  for (let i = 0; i < WARM_GETS; i++) {
    started = performance.now();
    last = store.getSync(ref);
    calls.push((performance.now() - started) * 1000);
  }
  const warmGetMeanUs = ((performance.now() - batchStarted) * 1000) / WARM_GETS;
  const warmGetUs = stats(calls).median;
  if (last.length !== n) throw new Error('warm get returned the wrong array');
  for (const extra of puts.slice(1)) store.free(extra);
  puts = [];

  let createFillMs = 0;
  let newFillMs = 0;
  const timeCreate = (): void => {
    settle();
    const timed = timeEach(reps, () => {
      const writer = store.create(Float64Array, n);
      fill(writer.array);
      return writer.seal();
    });
    createFillMs = timed.ms;
    for (const created of timed.results) store.free(created);
  };
  const timeNew = (): void => {
    settle();
    newFillMs = timeEach(reps, () => {
      const array = new Float64Array(n);
      fill(array);
      return array;
    }).ms;
  };
  for (const phase of storeFirst ? [timeCreate, timeNew] : [timeNew, timeCreate]) phase();
  settle();

  // Inline objects live in this process's memory, which no other process can reach.
  let child: ChildReport | undefined;
  if (withChild && !inline) {
    child = await runChild(ref);
    if (child.sum !== expectedSum || child.length !== n) {
      throw new Error(`the child read sum ${child.sum} over ${child.length} elements, expected ${expectedSum} over ${n}`);
    }
  }
  store.free(ref);
  return { inline, putMs, sliceMs, createFillMs, newFillMs, firstGetUs, warmGetUs, warmGetMeanUs, child };
}

// ---- per size ------------------------------------------------------------------------------

interface SizeResult {
  label: string;
  bytes: number;
  elements: number;
  runs: number;
  opsPerTiming: number;
  inline: boolean;
  putMs: Stats;
  sliceMs: Stats;
  putOverSlice: number;
  createFillMs: Stats;
  newFillMs: Stats;
  createFillOverNewFill: number;
  parentFirstGetUs: Stats;
  warmGetUs: Stats;
  warmGetMeanUs: Stats;
  child:
    | {
        getUs: Stats;
        secondGetUs: Stats;
        getFaults: Stats;
        firstSumMs: Stats;
        firstSumFaults: Stats;
        secondSumMs: Stats;
        secondSumFaults: Stats;
      }
    | null;
  /** Live mappings in this process after the size's runs (leak check: should not grow). */
  mappingsAfter: number;
}

async function measureSize(bytes: number, index: number, count: number, options: Options): Promise<SizeResult> {
  const n = bytes / 8;
  const runs = runsFor(bytes, options);
  const name = `[${index + 1}/${count}] ${label(bytes)}`;
  progress(`${name}: preparing source array`);
  const src = new Float64Array(n);
  fill(src);
  const expectedSum = sum(src);
  const samples: RunSample[] = [];
  for (let run = 0; run < runs; run++) {
    await releaseMappings();
    const runStarted = performance.now();
    const sample = await runOnce(src, expectedSum, run, true);
    samples.push(sample);
    progress(
      `${name} run ${run + 1}/${runs}: put ${fmt(sample.putMs)} ms, slice ${fmt(sample.sliceMs)} ms, ` +
        `create+fill ${fmt(sample.createFillMs)} ms, new+fill ${fmt(sample.newFillMs)} ms, ` +
        `warm get ${fmt(sample.warmGetUs)} µs (mean ${fmt(sample.warmGetMeanUs)})` +
        (sample.child ? `, child get ${fmt(sample.child.getUs)} µs / first sum ${fmt(sample.child.firstSumMs)} ms` : '') +
        ` (${fmt((performance.now() - runStarted) / 1000)} s)`,
    );
  }
  const mappingsAfter = await settledMappings();
  const pick = (key: keyof Omit<RunSample, 'child' | 'inline'>): Stats => stats(samples.map((s) => s[key]));
  const children = samples.flatMap((s) => (s.child ? [s.child] : []));
  const pickChild = (key: keyof ChildReport): Stats => stats(children.map((c) => c[key]));
  const putMs = pick('putMs');
  const sliceMs = pick('sliceMs');
  const createFillMs = pick('createFillMs');
  const newFillMs = pick('newFillMs');
  return {
    label: label(bytes),
    bytes,
    elements: n,
    runs,
    opsPerTiming: repsFor(bytes),
    inline: samples.some((s) => s.inline),
    putMs,
    sliceMs,
    putOverSlice: putMs.median / sliceMs.median,
    createFillMs,
    newFillMs,
    createFillOverNewFill: createFillMs.median / newFillMs.median,
    parentFirstGetUs: pick('firstGetUs'),
    warmGetUs: pick('warmGetUs'),
    warmGetMeanUs: pick('warmGetMeanUs'),
    child:
      children.length === 0
        ? null
        : {
            getUs: pickChild('getUs'),
            secondGetUs: pickChild('secondGetUs'),
            getFaults: pickChild('getFaults'),
            firstSumMs: pickChild('firstSumMs'),
            firstSumFaults: pickChild('firstSumFaults'),
            secondSumMs: pickChild('secondSumMs'),
            secondSumFaults: pickChild('secondSumFaults'),
          },
    mappingsAfter,
  };
}

// ---- report --------------------------------------------------------------------------------

function table(results: readonly SizeResult[]): string {
  const header = [
    'size',
    'put ms',
    'slice ms',
    'put/slice',
    'create+fill ms',
    'new+fill ms',
    'create/new',
    'warm get µs',
    'child get µs',
    'child 1st sum ms',
    'child faults',
    'child 2nd sum ms',
  ];
  const rows = results.map((r) => [
    r.label,
    `${fmt(r.putMs.median)} (${fmt(r.putMs.min)})`,
    `${fmt(r.sliceMs.median)} (${fmt(r.sliceMs.min)})`,
    fmt(r.putOverSlice),
    `${fmt(r.createFillMs.median)} (${fmt(r.createFillMs.min)})`,
    `${fmt(r.newFillMs.median)} (${fmt(r.newFillMs.min)})`,
    fmt(r.createFillOverNewFill),
    `${fmt(r.warmGetUs.median)} (${fmt(r.warmGetUs.min)})`,
    r.child ? `${fmt(r.child.getUs.median)} (${fmt(r.child.getUs.min)})` : 'inline',
    r.child ? `${fmt(r.child.firstSumMs.median)} (${fmt(r.child.firstSumMs.min)})` : '-',
    r.child ? String(r.child.firstSumFaults.median) : '-',
    r.child ? `${fmt(r.child.secondSumMs.median)} (${fmt(r.child.secondSumMs.min)})` : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    totalMemBytes: totalmem(),
    node: process.version,
    kernel: release(),
    gcExposed: gc !== undefined,
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!gc) progress('warning: global.gc is not exposed; run with `node --expose-gc` for steadier numbers');
  // Shoal prestarts a worker process per CPU; this benchmark runs no tasks, so ask for the fewest
  // (one) to keep idle workers off the two cores (get-in-child.ts does the same).
  await init({ numCpus: 1 });
  const started = performance.now();

  // One untimed pass over both paths (inline and segment) so the first measured size does not
  // pay for compiling the put, get and fill code.
  progress('warming up');
  for (const bytes of [KiB, MiB]) {
    const src = new Float64Array(bytes / 8);
    fill(src);
    await runOnce(src, sum(src), 0, false);
  }

  const results: SizeResult[] = [];
  for (const [index, bytes] of options.sizes.entries()) {
    results.push(await measureSize(bytes, index, options.sizes.length, options));
  }
  const elapsedS = (performance.now() - started) / 1000;

  const smallest = results.find((r) => r.bytes === KiB);
  const largest = results.find((r) => r.bytes === 1.5 * GiB);
  const warmGetRatio = smallest && largest ? largest.warmGetUs.median / smallest.warmGetUs.median : undefined;

  const host = machine();
  console.log(`\nShoal store put/get: median (min) over runs, per operation. ${host.cpu}, ${host.cores} cores, node ${host.node}`);
  console.log(table(results));
  console.log(
    [
      '',
      'put/slice and create/new are ratios of medians. warm get: median of single calls (batch means in the JSON).',
      'child: a fresh process; get = its first getSync; faults = minor page faults of its first read pass.',
      ...(warmGetRatio === undefined ? [] : [`warm get 1.5 GB / warm get 1 KB: ${fmt(warmGetRatio)}`]),
      `total ${fmt(elapsedS)} s`,
    ].join('\n'),
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}store-put-get.json`;
  const report = {
    benchmark: 'store-put-get',
    date: new Date().toISOString(),
    machine: host,
    options: { quick: options.quick, runs: options.runs ?? 'by size', sizes: options.sizes, warmGetsPerRun: WARM_GETS },
    elapsedS,
    warmGetRatio1_5GBOver1KB: warmGetRatio ?? null,
    results,
  };
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  progress(`wrote ${file}`);
}

try {
  await main();
} catch (error) {
  process.exitCode = 1;
  console.error(error);
} finally {
  await shutdown();
}
