// The seed article's table ("Sharing big NumPy arrays across python processes", Luis Sena), in
// Node: every way of sharing a big Float64Array with worker processes or threads, each summing its
// part with the same plain loop (seed-kernel.ts), one worker per core, steady state.
//
// Rows (the article's counterpart in brackets):
//   IPC copy            fork() children, serialization: 'advanced'; each call sends every child
//                       its slice by value                                   [IPC with pickle]
//   postMessage copy    worker_threads; each call posts every thread its slice, which the
//                       structured clone copies                                           [-]
//   Shoal, naive        remote(sumRange)(slice, 0, n): the slices passed by value each call
//                       (Shoal puts them into the store, the workers read them)    [Ray naive]
//   mmap, disk file     fork() children; each call maps a file under os.tmpdir() with Shoal's
//                       addon and sums its range of it                         [mmap on /tmp]
//   mmap, /dev/shm      the same with a file in /dev/shm        [mmap on /dev/shm, SharedMemory]
//   SharedArrayBuffer   worker_threads sharing one SAB; each call posts a range
//                       (the in-process ceiling)            [copy-on-write, sharedctypes RawArray]
//   Shoal object store  store.put(array) once; per call remote(sumRange)(ref, start, end) per
//                       worker, read in place                               [Ray object store]
//   single thread       one in-process pass (the floor with one core)                     [-]
//   memory read         memchr (Buffer.indexOf) over the same bytes, one thread per core: the
//                       machine's read bandwidth, a floor no sum loop can beat            [-]
// Pools start before timing; each row has untimed warm-up calls (first mapping, page faults,
// JIT), then `runs` runs, rows rotated every run so each goes first equally often. The rows that
// copy the whole array per call are capped at a few runs. Every result is checked exactly.
// Two phases, each starting what it needs and stopping it before the next:
//   in place  the rows that read the array where it is, interleaved
//   copies    IPC, postMessage and Shoal naive, interleaved: apart, because the gigabytes each of
//             their calls allocates and frees slowed whatever row ran next (up to 2x in trial runs)
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { writeSegment } from '@shoal/shm';
import { get, init, remote, shutdown, store, type ObjectRef } from 'shoal';
import { fmt, gc, median, renderTable, rotate, settle, stats, type Stats } from './common.js';
import type { ArticleWorkerReply, ArticleWorkerRequest } from './article-worker.js';
import type { MmapRequest } from './article-mmap-child.js';
import { cpuSnapshot, interferenceBetween, isDisturbed, type Interference } from './interference.js';
import { killAtExit, removeAtExit, Scope } from './lifecycle.js';
import { sumRange } from './seed-kernel.js';

const THREAD_FILE = fileURLToPath(new URL('./article-worker.js', import.meta.url));
const MMAP_CHILD = fileURLToPath(new URL('./article-mmap-child.js', import.meta.url));
const IPC_CHILD = fileURLToPath(new URL('./seed-ipc-child.js', import.meta.url));

/** The article's figures (ms): ~1.5 GB array, numpy.sum, 4 dedicated cores, mean of 30 runs. */
export const ARTICLE_MS = {
  ipcPickle: 4137.79,
  copyOnWrite: 80.3,
  rawArray: 102.24,
  mmapTmp: 159.62,
  mmapDevShm: 108.68,
  sharedMemory: 99.96,
  rayNaive: 252.08,
  rayObjectStore: 70.65,
} as const;

export const ARTICLE_SOURCE =
  'Luis Sena, "Sharing big NumPy arrays across python processes": ~1.5 GB array, numpy.sum with 4 processes ' +
  'on 4 dedicated cores (Docker), mean of 30 runs without outliers, pool start-up excluded';

export interface ArticleOptions {
  quick: boolean;
  runs: number;
  elements: number;
  /** Use a smaller array if this one does not fit in memory (only when --elements was not given). */
  fitToMemory: boolean;
  workers: number;
}

export function articleOptions(flags: { quick: boolean; runs?: number | undefined; elements?: number | undefined }): ArticleOptions {
  return {
    quick: flags.quick,
    // The article averaged 30 runs; 21 keep the full suite within its time budget on 2 cores.
    runs: flags.runs ?? (flags.quick ? 2 : 21),
    // 187,500,000 doubles = 1.5 GB (10^9 bytes), the article's size.
    elements: flags.elements ?? (flags.quick ? 2_000_000 : 187_500_000),
    fitToMemory: flags.elements === undefined,
    workers: availableParallelism(),
  };
}

/** Most runs of the rows that copy the whole array per call: seconds each at 1.5 GB. */
const SLOW_ROW_RUNS = { ipc: 3, clone: 5, naive: 5 } as const;

export interface ArticleRow {
  key: string;
  name: string;
  how: string;
  kernel: 'sum loop' | 'memchr';
  runs: number;
  ms: Stats;
  /** 10^9 bytes per second at the median time. */
  gbPerS: number;
  /** This row's median / the Shoal object store row's median. */
  overShoal: number;
  /** Per run this time / Shoal store's time in that same run, then the median of those. */
  overShoalSameRun: number;
  warmUpMs: number;
  article: { label: string; ms: number }[];
}

export interface ArticleGoal {
  goal: string;
  /** The ratio of the two rows' medians: what the table shows, and what `met` judges. */
  value: number;
  /** The ratio of their minimums: the best each did, less exposed to a noisy neighbour. */
  ofMins: number;
  /** Per run ratio, then the median (NaN when the rows are timed in different phases). */
  sameRun: number;
  met: boolean;
}

export interface ArticleReport {
  options: ArticleOptions & { bytes: number; slowRowRuns: typeof SLOW_ROW_RUNS };
  article: { source: string; ms: typeof ARTICLE_MS };
  elapsedS: number;
  setupMs: Record<string, number>;
  startUpMs: Record<string, number>;
  diskFile: { path: string; filesystem: string };
  readBandwidthGBps: number;
  rows: ArticleRow[];
  goals: ArticleGoal[];
  /** Cores' worth of CPU used by other processes (and stolen by the hypervisor) per phase. */
  interference: Record<'inPlace' | 'copies', Interference>;
  /**
   * Shared memory (Shmem in /proc/meminfo) still held at the end of the copies phase, over what it
   * was at its start: near 0, unless Shoal's workers keep freed arguments mapped again (as they
   * did before 4181f10: 1.5 GB per naive call).
   */
  copiesShmemLeftBytes: number;
}

// ---- data ------------------------------------------------------------------------------------

// Deterministic values, all multiples of 0.5 far below 2^52: every partial sum is exact, so every
// row must return exactly `expectedSum`, however the array is split.
const valueAt = (i: number): number => (i % 1000) * 0.5;

function expectedSum(n: number): number {
  const blocks = Math.floor(n / 1000);
  const rest = n % 1000;
  return blocks * 249_750 + (rest * (rest - 1)) / 4;
}

function splitRanges(n: number, parts: number): [number, number][] {
  const chunk = Math.ceil(n / parts);
  return Array.from({ length: parts }, (_, w) => [Math.min(n, w * chunk), Math.min(n, (w + 1) * chunk)]);
}

/** A byte value that occurs nowhere in `bytes` (the data repeats every 8,000 bytes), for memchr. */
function absentByte(bytes: Uint8Array): number {
  const seen = new Uint8Array(256);
  for (let i = 0; i < Math.min(bytes.length, 8000); i++) seen[bytes[i]!] = 1;
  for (const candidate of [0xff, ...Array.from({ length: 256 }, (_, i) => i)]) if (seen[candidate] === 0) return candidate;
  throw new Error('every byte value occurs in the array: no needle for the bandwidth scan');
}

/** The file system type of the mount holding `path` (the longest mount point that prefixes it). */
function filesystemOf(path: string): string {
  try {
    let best = { point: '', type: 'unknown' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, point, type] = line.split(' ');
      if (point === undefined || type === undefined) continue;
      const prefix = point.endsWith('/') ? point : `${point}/`;
      if ((path === point || path.startsWith(prefix)) && point.length > best.point.length) best = { point, type };
    }
    return best.type;
  } catch {
    return 'unknown';
  }
}

function shmemBytes(): number {
  try {
    const match = /^Shmem:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

// ---- pools -----------------------------------------------------------------------------------

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** worker_threads running article-worker.js; replies are matched to calls by id. */
class ThreadPool {
  readonly #workers: Worker[];
  readonly #pending = new Map<number, { resolve(value: number): void; reject(error: Error): void }>();
  #nextId = 0;

  private constructor(workers: Worker[]) {
    this.#workers = workers;
    for (const worker of workers) {
      worker.on('message', (reply: ArticleWorkerReply) => {
        const pending = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        pending?.resolve(reply.value);
      });
      // A dead thread would otherwise leave its caller waiting forever.
      const failAll = (error: Error): void => {
        for (const pending of this.#pending.values()) pending.reject(error);
        this.#pending.clear();
      };
      worker.on('error', failAll);
      worker.on('exit', (code) => failAll(new Error(`an article worker thread exited (code ${code})`)));
    }
  }

  static async start(count: number, sab?: SharedArrayBuffer): Promise<ThreadPool> {
    const workers = Array.from({ length: count }, () => new Worker(THREAD_FILE, { workerData: { sab } }));
    await Promise.all(workers.map((worker) => once(worker, 'online')));
    return new ThreadPool(workers);
  }

  call(w: number, request: WithoutId<ArticleWorkerRequest>): Promise<number> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      this.#pending.set(id, { resolve, reject });
      this.#workers[w]!.postMessage({ ...request, id });
    });
  }

  async gc(): Promise<void> {
    await Promise.all(this.#workers.map((_, w) => this.call(w, { op: 'gc' })));
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}

/** fork() children that answer one request at a time (seed-ipc-child.js, article-mmap-child.js). */
class ChildPool {
  readonly #children: ChildProcess[];
  readonly #stops: (() => Promise<void>)[];

  private constructor(children: ChildProcess[]) {
    this.#children = children;
    this.#stops = children.map(killAtExit);
  }

  static async start(file: string, count: number): Promise<ChildPool> {
    const children = Array.from({ length: count }, () =>
      fork(file, [], { serialization: 'advanced', execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    );
    const pool = new ChildPool(children);
    try {
      await Promise.all(children.map((child) => pool.#reply(child)));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** The child's next message; rejects if it exits first or answers with an error. */
  #reply<T>(child: ChildProcess): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null): void => {
        child.off('message', onMessage);
        reject(new Error(`a child process exited (code ${code}, signal ${signal}) before answering`));
      };
      const onMessage = (message: unknown): void => {
        child.off('exit', onExit);
        if (typeof message === 'object' && message !== null && 'error' in message) {
          reject(new Error(String((message as { error: unknown }).error)));
        } else {
          resolve(message as T);
        }
      };
      child.once('message', onMessage);
      child.once('exit', onExit);
    });
  }

  ask<T>(w: number, message: Float64Array | MmapRequest | 'gc'): Promise<T> {
    const child = this.#children[w]!;
    const reply = this.#reply<T>(child);
    child.send(message);
    return reply;
  }

  async gc(): Promise<void> {
    await Promise.all(this.#children.map((_, w) => this.ask(w, 'gc')));
  }

  async close(): Promise<void> {
    await Promise.all(this.#stops.map((stop) => stop()));
  }
}

// ---- rows ------------------------------------------------------------------------------------

interface Contender {
  readonly key: string;
  readonly name: string;
  readonly how: string;
  readonly kernel: 'sum loop' | 'memchr';
  readonly maxRuns: number;
  /** Warm-up calls at least (default 1; then more, up to 3, while they take under a second). */
  readonly warmUpCalls?: number;
  readonly article: { label: string; ms: number }[];
  /** One timed call; returns the value to check against `expected`. */
  run(): Promise<number>;
  readonly expected: number;
  /** Untimed clean-up after a call (the garbage of a copy), so it does not slow the next row. */
  after?(): Promise<void>;
}

export async function runArticle(options: ArticleOptions, log: (text: string) => void): Promise<ArticleReport> {
  sweepStaleFiles();
  const started = performance.now();
  const n = fitToMemory(options, log);
  const W = options.workers;
  const bytes = n * Float64Array.BYTES_PER_ELEMENT;
  const ranges = splitRanges(n, W);
  const setupMs: Record<string, number> = {};
  const startUpMs: Record<string, number> = {};
  const context: PhaseContext = { options, log, n, W, bytes, ranges, expected: expectedSum(n), setupMs, startUpMs };

  const inPlace = await phaseInPlace(context);
  settle();
  const copies = await phaseCopies(context, inPlace.slices);

  const phases = [inPlace, copies];
  const times = new Map(phases.flatMap((phase) => [...phase.timing.times]));
  const warmUpMs = Object.assign({}, ...phases.map((phase) => phase.timing.warmUpMs)) as Record<string, number>;
  // Same-run ratios exist for the rows timed in the same runs as Shoal's: the in-place ones.
  const { byRun } = inPlace.timing;
  /** Median over the runs that timed both of a's time / b's time in that run. */
  const sameRun = (a: string, b: string): number =>
    median(
      byRun.flatMap((run) => {
        const mine = run.get(a);
        const base = run.get(b);
        return mine === undefined || base === undefined ? [] : [mine / base];
      }),
    );
  const shoalMedian = median(times.get('shoal-store') ?? []);
  const rows: ArticleRow[] = phases
    .flatMap((phase) => phase.contenders)
    .sort((a, b) => ROW_ORDER.indexOf(a.key) - ROW_ORDER.indexOf(b.key))
    .map((c) => {
      const ms = stats(times.get(c.key) ?? []);
      return {
        key: c.key,
        name: c.name,
        how: c.how,
        kernel: c.kernel,
        runs: ms.samples.length,
        ms,
        gbPerS: bytes / 1e9 / (ms.median / 1000),
        overShoal: ms.median / shoalMedian,
        overShoalSameRun: sameRun(c.key, 'shoal-store'),
        warmUpMs: warmUpMs[c.key] ?? Number.NaN,
        article: c.article,
      };
    });
  const row = (key: string): ArticleRow | undefined => rows.find((r) => r.key === key);
  const ratio = (a: string, b: string, of: 'median' | 'min'): number => (row(a)?.ms[of] ?? Number.NaN) / (row(b)?.ms[of] ?? Number.NaN);
  const shoalOverSab = ratio('shoal-store', 'sab', 'median');
  const ipcOverShoal = ratio('ipc', 'shoal-store', 'median');
  const goals: ArticleGoal[] = [
    {
      goal: 'Shoal object store / SharedArrayBuffer <= 1.1',
      value: shoalOverSab,
      ofMins: ratio('shoal-store', 'sab', 'min'),
      sameRun: sameRun('shoal-store', 'sab'),
      met: shoalOverSab <= 1.1,
    },
    {
      goal: 'IPC copy / Shoal object store >= 40',
      value: ipcOverShoal,
      ofMins: ratio('ipc', 'shoal-store', 'min'),
      sameRun: Number.NaN,
      met: ipcOverShoal >= 40,
    },
  ];
  return {
    options: { ...options, elements: n, bytes, slowRowRuns: SLOW_ROW_RUNS },
    article: { source: ARTICLE_SOURCE, ms: ARTICLE_MS },
    elapsedS: (performance.now() - started) / 1000,
    setupMs,
    startUpMs,
    diskFile: inPlace.diskFile,
    readBandwidthGBps: row('bandwidth')?.gbPerS ?? Number.NaN,
    rows,
    goals,
    interference: { inPlace: inPlace.timing.interference, copies: copies.timing.interference },
    copiesShmemLeftBytes: copies.shmemLeftBytes,
  };
}

/** The table's order: the article's, slowest way first, then the floors. */
const ROW_ORDER = ['ipc', 'clone', 'shoal-naive', 'mmap-disk', 'mmap-shm', 'sab', 'shoal-store', 'single', 'bandwidth'];

interface PhaseContext {
  options: ArticleOptions;
  log: (text: string) => void;
  n: number;
  W: number;
  bytes: number;
  ranges: [number, number][];
  expected: number;
  setupMs: Record<string, number>;
  startUpMs: Record<string, number>;
}

const timed = async <T>(into: Record<string, number>, label: string, action: () => T | Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const result = await action();
  into[label] = performance.now() - t0;
  return result;
};

/** Bytes the system can still give (MemAvailable: free memory plus reclaimable cache). */
function memAvailable(): number {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: os.freemem() is the best there is.
  }
  return freemem();
}

/**
 * Copies of the array alive at the peak, plus one for slack: in place, the SharedArrayBuffer and
 * the slices in this process, the store object, the /dev/shm file and the disk file's page cache
 * (5); copies, the slices and up to three in flight (4).
 */
const PEAK_COPIES = 6;

/**
 * The array size to use: the one asked for; or by default 1.5 GB, made smaller (with a warning)
 * if the machine cannot hold PEAK_COPIES of it, rather than be killed by the OOM killer halfway.
 */
function fitToMemory(options: ArticleOptions, log: (text: string) => void): number {
  const available = memAvailable();
  const needed = options.elements * Float64Array.BYTES_PER_ELEMENT * PEAK_COPIES;
  if (available >= needed) return options.elements;
  if (!options.fitToMemory) {
    log(`warning: ${fmt(available / 1e9)} GB available, this size may need ${fmt(needed / 1e9)} GB`);
    return options.elements;
  }
  const fitted = Math.max(1_000_000, Math.floor(available / PEAK_COPIES / Float64Array.BYTES_PER_ELEMENT / 1e6) * 1e6);
  log(
    `warning: only ${fmt(available / 1e9)} GB available, ${fmt(needed / 1e9)} GB needed for a ` +
      `${fmt((options.elements * 8) / 1e9)} GB array: using ${fmt((fitted * 8) / 1e9)} GB instead (--elements=N to force)`,
  );
  return fitted;
}

const STALE = /^shoal-bench-(?:article-)?(\d+)(?:\.f64)?$/;

/**
 * Removes the files of earlier runs that were killed (SIGKILL, the OOM killer) before clean-up:
 * tmpdir()/shoal-bench-article-<pid>.f64 and /dev/shm/shoal-bench-<pid>/ whose pid is gone.
 */
function sweepStaleFiles(): void {
  for (const directory of [tmpdir(), '/dev/shm']) {
    let names: string[];
    try {
      names = readdirSync(directory);
    } catch {
      continue;
    }
    for (const name of names) {
      const pid = Number(STALE.exec(name)?.[1]);
      if (!pid || pid === process.pid) continue;
      try {
        process.kill(pid, 0);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(directory, name), { force: true, recursive: true });
      }
    }
  }
}

/**
 * A directory of our own in /dev/shm for the mmap row's file. Any Shoal session that starts on
 * the machine (another program's, a test's) sweeps /dev/shm/shoal-* entries that have no
 * owner.json naming a live process, once they are a minute old, files included: a bare
 * /dev/shm/shoal-bench-*.f64 vanished mid-run that way. An owner.json with our pid makes the
 * sweep leave it alone while we run and remove it if we are killed.
 */
function claimShmDirectory(directory: string): void {
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  writeFileSync(join(directory, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: null }));
}

interface Timing {
  /** What other processes used while the runs (not the warm-up) went on. */
  interference: Interference;
  times: Map<string, number[]>;
  /** Per run, key -> ms, to pair each row with Shoal's time in the same run. */
  byRun: Map<string, number>[];
  warmUpMs: Record<string, number>;
}

/** Warm-up, then `runs` runs of every contender, rotated every run; every value is checked. */
async function timeRows(contenders: readonly Contender[], runs: number, log: (text: string) => void): Promise<Timing> {
  const check = (contender: Contender, value: number): void => {
    if (value !== contender.expected) throw new Error(`${contender.name} returned ${value}, expected ${contender.expected}`);
  };
  // Warm-up: the first call maps segments and faults their pages in, grows the heaps that will
  // hold copies, and gets the kernel optimized (workers compile it afresh: a few calls when they
  // are cheap). The rows that copy take two: their first run after one was still 1.5x slower in
  // trial runs (the receivers' heaps still growing). The first call's time is reported, never counted.
  const warmUpMs: Record<string, number> = {};
  for (const contender of contenders) {
    const warmStarted = performance.now();
    const least = contender.warmUpCalls ?? 1;
    for (let call = 0; call < Math.max(3, least) && (call < least || performance.now() - warmStarted < 1000); call++) {
      settle();
      const t0 = performance.now();
      check(contender, await contender.run());
      warmUpMs[contender.key] ??= performance.now() - t0;
      await contender.after?.();
    }
    log(`warm-up ${contender.name}: first call ${fmt(warmUpMs[contender.key])} ms`);
  }

  const times = new Map<string, number[]>(contenders.map((c) => [c.key, []]));
  const byRun: Map<string, number>[] = [];
  const cpuAtStart = cpuSnapshot();
  for (let run = 0; run < runs; run++) {
    const active = contenders.filter((c) => run < c.maxRuns);
    if (active.length === 0) break;
    const thisRun = new Map<string, number>();
    for (const contender of rotate(active, run)) {
      settle();
      const t0 = performance.now();
      const value = await contender.run();
      const ms = performance.now() - t0;
      check(contender, value);
      await contender.after?.();
      times.get(contender.key)!.push(ms);
      thisRun.set(contender.key, ms);
    }
    byRun.push(thisRun);
    log(`run ${run + 1}: ${[...thisRun].map(([key, ms]) => `${key} ${fmt(ms)}`).join(', ')} ms`);
  }
  const interference = interferenceBetween(cpuAtStart, cpuSnapshot());
  if (isDisturbed(interference)) {
    log(`disturbed: other processes used ${interference.otherCores.toFixed(2)} cores (steal ${interference.stealCores.toFixed(2)}) during these runs`);
  }
  return { interference, times, byRun, warmUpMs };
}

const sumOf = (parts: readonly number[]): number => parts.reduce((a, b) => a + b, 0);

/**
 * The array, filled in this process, then: put once into the object store (the Shoal row's one
 * put, before any timing: the article's ray.put was untimed too), copied into a SharedArrayBuffer,
 * and sliced per worker. The source array is not returned, so it can be collected at once.
 */
function prepareArrays(context: PhaseContext): { ref: ObjectRef<Float64Array>; sab: SharedArrayBuffer; slices: Float64Array[] } {
  const { n, bytes, ranges, setupMs } = context;
  const step = <T>(label: string, action: () => T): T => {
    const t0 = performance.now();
    const result = action();
    setupMs[label] = performance.now() - t0;
    return result;
  };
  const source = step('fill', () => {
    const array = new Float64Array(n);
    for (let i = 0; i < n; i++) array[i] = valueAt(i);
    return array;
  });
  const ref = step('store.put', () => store.put(source));
  const sab = new SharedArrayBuffer(bytes);
  step('copy into a SharedArrayBuffer', () => new Float64Array(sab).set(source));
  // Each worker's slice with a buffer of its own: postMessage clones a view's whole buffer, so a
  // subarray of the big array would copy all of it to every thread.
  const slices = step('slice per worker', () => ranges.map(([start, end]) => source.slice(start, end)));
  return { ref, sab, slices };
}

/**
 * The rows that read the array in place, interleaved, in one Shoal session: returns their timings
 * and the per-worker slices (for the copying rows). All it starts or writes is gone on return.
 */
async function phaseInPlace(
  context: PhaseContext,
): Promise<{ timing: Timing; contenders: Contender[]; slices: Float64Array[]; diskFile: { path: string; filesystem: string } }> {
  const { options, log, n, W, bytes, ranges, expected, setupMs, startUpMs } = context;
  const scope = new Scope();
  try {
    const diskPath = join(tmpdir(), `shoal-bench-article-${process.pid}.f64`);
    scope.defer(removeAtExit(diskPath));
    const shmDir = `/dev/shm/shoal-bench-${process.pid}`;
    scope.defer(removeAtExit(shmDir));
    claimShmDirectory(shmDir);
    const shmPath = join(shmDir, 'article.f64');

    log(`starting Shoal (${W} workers)`);
    await timed(startUpMs, 'shoal', () => init({ numCpus: W }));
    scope.defer(() => shutdown());

    log(`filling ${n.toLocaleString('en-US')} doubles (${fmt(bytes / 1e9)} GB) and putting them in the object store`);
    const { ref, sab, slices } = prepareArrays(context);
    const shared = new Float64Array(sab);
    // The source array is garbage now: gone before the files double the memory in use.
    settle();
    const offsets = ranges.map(([start]) => start * Float64Array.BYTES_PER_ELEMENT);
    await timed(setupMs, 'write the /dev/shm file', () => writeSegment(shmPath, bytes, slices, offsets));
    await timed(setupMs, 'write the disk file + fsync', () => {
      writeSegment(diskPath, bytes, slices, offsets);
      // Flushed now, so write-back does not run under the timed rows.
      const fd = openSync(diskPath, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    });
    const diskFilesystem = filesystemOf(diskPath);
    log(
      `  ${Object.entries(setupMs)
        .map(([label, ms]) => `${label} ${fmt(ms)} ms`)
        .join(', ')}; disk file on ${diskFilesystem}`,
    );

    log('starting worker threads and child processes');
    const sabPool = await timed(startUpMs, 'worker_threads + SAB', () => ThreadPool.start(W, sab));
    scope.defer(() => sabPool.close());
    const mmapPool = await timed(startUpMs, 'fork (mmap)', () => ChildPool.start(MMAP_CHILD, W));
    scope.defer(() => mmapPool.close());

    const shoalSum = remote(sumRange);
    const needle = absentByte(new Uint8Array(sab, 0, Math.min(bytes, 8000)));
    const mmapRow = (key: string, name: string, path: string, article: Contender['article']): Contender => ({
      key,
      name,
      how: `fork() children; each call maps ${path} with Shoal's addon and sums its range`,
      kernel: 'sum loop',
      maxRuns: options.runs,
      article,
      expected,
      run: async () => sumOf(await Promise.all(ranges.map(([start, end], w) => mmapPool.ask<number>(w, { path, start, end })))),
      after: () => mmapPool.gc(),
    });

    const contenders: Contender[] = [
      {
        key: 'sab',
        name: 'worker_threads + SharedArrayBuffer',
        how: 'worker_threads sharing one SharedArrayBuffer; each call posts a range',
        kernel: 'sum loop',
        maxRuns: options.runs,
        article: [
          { label: 'copy-on-write', ms: ARTICLE_MS.copyOnWrite },
          { label: 'RawArray', ms: ARTICLE_MS.rawArray },
        ],
        expected,
        run: async () => sumOf(await Promise.all(ranges.map(([start, end], w) => sabPool.call(w, { op: 'sum', start, end })))),
      },
      mmapRow('mmap-disk', `mmap, file on disk (${diskFilesystem})`, diskPath, [{ label: 'mmap on /tmp', ms: ARTICLE_MS.mmapTmp }]),
      mmapRow('mmap-shm', 'mmap, file in /dev/shm', shmPath, [
        { label: 'mmap on /dev/shm', ms: ARTICLE_MS.mmapDevShm },
        { label: 'SharedMemory', ms: ARTICLE_MS.sharedMemory },
      ]),
      {
        key: 'shoal-store',
        name: 'Shoal object store',
        how: 'store.put(array) once; each call remote(sumRange)(ref, start, end) per worker, read in place',
        kernel: 'sum loop',
        maxRuns: options.runs,
        article: [{ label: 'Ray object store', ms: ARTICLE_MS.rayObjectStore }],
        expected,
        run: async () => sumOf(await get(ranges.map(([start, end]) => shoalSum(ref, start, end)))),
      },
      {
        key: 'single',
        name: 'single thread, in-process',
        how: 'one pass over the whole array in this thread: the floor with one core',
        kernel: 'sum loop',
        maxRuns: options.runs,
        article: [],
        expected,
        run: async () => sumRange(shared, 0, n),
      },
      {
        key: 'bandwidth',
        name: `memory read, memchr x ${W} threads`,
        how: "Buffer.indexOf of an absent byte over each thread's range of the SharedArrayBuffer: the read bandwidth",
        kernel: 'memchr',
        maxRuns: options.runs,
        article: [],
        // Every thread must scan to the end of its range and find nothing.
        expected: -W,
        run: async () =>
          sumOf(await Promise.all(ranges.map(([start, end], w) => sabPool.call(w, { op: 'scan', start: start * 8, end: end * 8, needle })))),
      },
    ];
    log(`in place: ${contenders.length} rows, ${options.runs} runs`);
    const timing = await timeRows(contenders, options.runs, log);
    return { timing, contenders, slices, diskFile: { path: diskPath, filesystem: diskFilesystem } };
  } finally {
    // Pools, files and the Shoal session (with the store object) go before the next phase.
    await scope.close();
  }
}

/**
 * The rows that copy every slice on every call, interleaved: IPC, postMessage and Shoal naive (in
 * a Shoal session of its own, so the in-place phase's store object is gone).
 */
async function phaseCopies(
  context: PhaseContext,
  slices: Float64Array[],
): Promise<{ timing: Timing; contenders: Contender[]; shmemLeftBytes: number }> {
  const { options, log, W, bytes, expected, startUpMs } = context;
  const scope = new Scope();
  try {
    const shmemBefore = shmemBytes();
    const clonePool = await timed(startUpMs, 'worker_threads (postMessage)', () => ThreadPool.start(W));
    scope.defer(() => clonePool.close());
    const ipcPool = await timed(startUpMs, 'fork (IPC)', () => ChildPool.start(IPC_CHILD, W));
    scope.defer(() => ipcPool.close());
    await timed(startUpMs, 'shoal (naive row)', () => init({ numCpus: W }));
    scope.defer(() => shutdown());
    const storeBaseline = store.stats().usedBytes;
    const shoalSum = remote(sumRange);
    // After a copy of gigabytes, V8 and the kernel release it from background threads; left
    // running, that work slowed the next row by up to 1.6x in trial runs at 1.6 GB.
    const quiet = (): Promise<void> => delay(Math.min(1000, bytes / 1.6e6));
    const contenders: Contender[] = [
      {
        key: 'ipc',
        name: 'IPC copy (fork, advanced serialization)',
        how: "child_process.fork, serialization: 'advanced'; each call sends every child its slice by value",
        kernel: 'sum loop',
        maxRuns: Math.min(options.runs, SLOW_ROW_RUNS.ipc),
        warmUpCalls: 2,
        article: [{ label: 'IPC with pickle', ms: ARTICLE_MS.ipcPickle }],
        expected,
        run: async () => sumOf(await Promise.all(slices.map((slice, w) => ipcPool.ask<number>(w, slice)))),
        after: async () => {
          await ipcPool.gc();
          gc?.();
          await quiet();
        },
      },
      {
        key: 'clone',
        name: 'postMessage copy (worker_threads)',
        how: 'worker_threads; each call posts every thread its slice, copied by the structured clone',
        kernel: 'sum loop',
        maxRuns: Math.min(options.runs, SLOW_ROW_RUNS.clone),
        warmUpCalls: 2,
        article: [],
        expected,
        run: async () => sumOf(await Promise.all(slices.map((slice, w) => clonePool.call(w, { op: 'sum-copy', array: slice })))),
        after: async () => {
          await clonePool.gc();
          gc?.();
          await quiet();
        },
      },
      {
        key: 'shoal-naive',
        name: 'Shoal, naive (by value)',
        how: 'remote(sumRange)(slice, 0, length): each call passes the slices by value (put into the store, read by the worker)',
        kernel: 'sum loop',
        maxRuns: Math.min(options.runs, SLOW_ROW_RUNS.naive),
        warmUpCalls: 2,
        article: [{ label: 'Ray naive', ms: ARTICLE_MS.rayNaive }],
        expected,
        run: async () => sumOf(await get(slices.map((slice) => shoalSum(slice, 0, slice.length)))),
        after: async () => {
          // The argument objects are freed once their refs are collected: wait for that.
          gc?.();
          for (let waited = 0; store.stats().usedBytes > storeBaseline && waited < 5000; waited += 10) {
            await delay(10);
            gc?.();
          }
          await quiet();
        },
      },
    ];
    log(`copies: ${contenders.length} rows, up to ${Math.max(...Object.values(SLOW_ROW_RUNS))} runs`);
    const timing = await timeRows(contenders, options.runs, log);
    // Memory of freed arguments the store keeps for the next puts of their size is not a leak.
    const shmemLeftBytes = shmemBytes() - shmemBefore - store.stats().reusableBytes;
    if (shmemLeftBytes > bytes / 2) {
      log(`  ${fmt(shmemLeftBytes / 1e9)} GB more in /dev/shm than before these rows, beyond what the store keeps for reuse: freed arguments still mapped by Shoal's workers?`);
    }
    return { timing, contenders, shmemLeftBytes };
  } finally {
    await scope.close();
  }
}

// ---- output ----------------------------------------------------------------------------------

/** What other processes used per phase, and a warning when that disturbed the figures. */
export function interferenceLine(report: ArticleReport): string {
  const phases = Object.entries(report.interference) as [string, Interference][];
  const text = phases.map(([phase, i]) => `${phase} ${i.otherCores.toFixed(2)}${i.stealCores > 0.01 ? ` (+${i.stealCores.toFixed(2)} stolen)` : ''}`).join(', ');
  const disturbed = phases.filter(([, i]) => isDisturbed(i)).map(([phase]) => phase);
  return (
    `Cores used by other processes during the runs: ${text}.` +
    (disturbed.length > 0 ? ` DISTURBED (${disturbed.join(', ')}): rerun on a quiet machine before trusting these figures.` : '')
  );
}

/** `goal: ratio of medians (ratio of minimums, same-run ratio)`, the last when there is one. */
export function goalLine(goal: ArticleGoal): string {
  const sameRun = Number.isFinite(goal.sameRun) ? `, same-run ${fmt(goal.sameRun)}` : '';
  return `${goal.goal}: ${fmt(goal.value)} (of minimums ${fmt(goal.ofMins)}${sameRun})`;
}

export function articleTable(report: ArticleReport, host: { cpu: string; cores: number; node: string }): string {
  const { options } = report;
  const head =
    `The article's table in Node: sum of a ${fmt(options.bytes / 1e9)} GB Float64Array (${options.elements.toLocaleString('en-US')} doubles), ` +
    `${options.workers} workers (one per core), same sum loop in every row but the last, pool start-up and first call excluded.\n` +
    `${host.cpu}, ${host.cores} cores, node ${host.node}; up to ${options.runs} runs per row (the rows that copy the array: fewer).`;
  const table = renderTable(
    ['', 'runs', 'median ms', 'min ms', 'GB/s', '× Shoal store', 'article (Python, 4 cores)'],
    report.rows.map((r) => [
      r.name,
      String(r.runs),
      fmt(r.ms.median),
      fmt(r.ms.min),
      fmt(r.gbPerS),
      fmt(r.overShoal),
      r.article.map((a) => `${a.label} ${fmt(a.ms)} ms`).join('; ') || '-',
    ]),
  );
  const goals = report.goals.map((g) => `${goalLine(g)} — ${g.met ? 'met' : 'NOT met'}`);
  return [
    head,
    table,
    '',
    '× Shoal store: this row\'s median / the Shoal object store\'s median. GB/s: array bytes / median time.',
    'The rows that copy (IPC, postMessage, Shoal naive) ran after the in-place rows, apart (see docs/benchmarks.md).',
    `Memory read bandwidth (all cores): ${fmt(report.readBandwidthGBps)} GB/s. Article: ${report.article.source}.`,
    interferenceLine(report),
    ...goals,
  ].join('\n');
}
