// The seed article's benchmark ("Sharing big NumPy arrays across python processes"), in Node: a
// big Float64Array summed by two workers with one plain-loop kernel (seed-kernel.ts), steady state.
//
//   node --expose-gc bench/dist/seed.js [--quick] [--runs=N] [--elements=N]
//
// Contenders, each summing the same array with the same kernel split in two ranges:
//   Shoal        store.create + fill + seal() once; per call get(ranges.map(([s, e]) => sumRange(ref, s, e)))
//                with remote(sumRange) on init({ numCpus: 2 }): two worker processes read the
//                segment in place
//   SAB          two worker_threads, the array in a SharedArrayBuffer shared once; per call each
//                thread is posted its range
//   IPC copies   two fork() children (serialization: 'advanced'); per call each is sent its slice
//                by value (at most 3 runs: each one copies the whole array)
//   single       one in-process pass over the whole array (the floor with one core)
// Each contender has a warm-up call first (pool start-up, first mapping and page faults, JIT), then
// the runs, contenders rotated every run. Prints a table on stdout with medians, mins and ratios
// to Shoal in the same run; writes bench/results/seed.json. Progress goes to stderr.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { get, init, remote, shutdown, store } from 'shoal';
import {
  fmt,
  gc,
  machine,
  median,
  parseFlags,
  progress,
  renderTable,
  rotate,
  settle,
  stats,
  writeResults,
  type Stats,
} from './common.js';
import { sumRange } from './seed-kernel.js';

const WORKERS = 2;
/** IPC runs at most: each sends the whole array through a pipe (seconds at 1.6 GB). */
const MAX_IPC_RUNS = 3;
const SAB_WORKER = fileURLToPath(new URL('./seed-sab-worker.js', import.meta.url));
const IPC_CHILD = fileURLToPath(new URL('./seed-ipc-child.js', import.meta.url));

interface Options {
  quick: boolean;
  runs: number;
  elements: number;
}

function parseOptions(argv: readonly string[]): Options {
  const flags = parseFlags(argv, ['elements']);
  return {
    quick: flags.quick,
    runs: flags.runs ?? (flags.quick ? 3 : 10),
    elements: flags.elements ?? (flags.quick ? 2_000_000 : 200_000_000),
  };
}

// Deterministic values, all multiples of 0.5 far below 2^52: every partial sum is exact, so every
// contender must return exactly `expectedSum`, whatever the split.
const valueAt = (i: number): number => (i % 1000) * 0.5;

function expectedSum(n: number): number {
  const blocks = Math.floor(n / 1000);
  const rest = n % 1000;
  return blocks * 249_750 + (rest * (rest - 1)) / 4;
}

interface Contender {
  readonly name: string;
  readonly maxRuns: number;
  sum(): Promise<number>;
  /** Untimed clean-up after a timed call. */
  after?(): Promise<void>;
  close(): Promise<void>;
}

function splitRanges(n: number): [number, number][] {
  const chunk = Math.ceil(n / WORKERS);
  return Array.from({ length: WORKERS }, (_, w) => [Math.min(n, w * chunk), Math.min(n, (w + 1) * chunk)]);
}

async function sabContender(sab: SharedArrayBuffer, ranges: readonly [number, number][], runs: number): Promise<Contender> {
  const workers = ranges.map(() => new Worker(SAB_WORKER, { workerData: { sab } }));
  await Promise.all(workers.map((worker) => once(worker, 'online')));
  let nextId = 0;
  const call = (worker: Worker, start: number, end: number): Promise<number> =>
    new Promise((resolve) => {
      const id = nextId++;
      const onMessage = (message: { id: number; sum: number }): void => {
        if (message.id !== id) return;
        worker.off('message', onMessage);
        resolve(message.sum);
      };
      worker.on('message', onMessage);
      worker.postMessage({ id, start, end });
    });
  return {
    name: 'worker_threads + SAB',
    maxRuns: runs,
    async sum() {
      const parts = await Promise.all(ranges.map(([start, end], w) => call(workers[w]!, start, end)));
      return parts.reduce((a, b) => a + b, 0);
    },
    close: async () => {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}

async function ipcContender(source: Float64Array, ranges: readonly [number, number][], runs: number): Promise<Contender> {
  const children: ChildProcess[] = ranges.map(() =>
    fork(IPC_CHILD, [], { serialization: 'advanced', execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  await Promise.all(children.map((child) => once(child, 'message')));
  const ask = <T>(child: ChildProcess, message: Float64Array | 'gc'): Promise<T> =>
    new Promise((resolve) => {
      child.once('message', (reply) => resolve(reply as T));
      child.send(message);
    });
  return {
    name: 'IPC copies (fork, advanced)',
    maxRuns: Math.min(runs, MAX_IPC_RUNS),
    async sum() {
      // subarray is a view here; child.send serializes (copies) it, the child gets its own copy.
      const parts = await Promise.all(ranges.map(([start, end], w) => ask<number>(children[w]!, source.subarray(start, end))));
      return parts.reduce((a, b) => a + b, 0);
    },
    async after() {
      await Promise.all(children.map((child) => ask(child, 'gc')));
      // V8 and the kernel release the gigabytes of copies from background threads after the GC;
      // left running, that work slowed the next contender by up to 1.6x in trial runs at 1.6 GB.
      gc?.();
      await delay(Math.min(1000, source.byteLength / 1.6e6));
    },
    close: async () => {
      await Promise.all(
        children.map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = once(child, 'exit');
          child.kill();
          await exited;
        }),
      );
    },
  };
}

interface Summary {
  name: string;
  runs: number;
  ms: Stats;
  /** GB/s (10^9 bytes) at the median time. */
  gbPerS: number;
  /** Per run: this time / Shoal's time in the same run; then the median over runs. */
  overShoal: number;
}

async function main(options: Options, closers: (() => Promise<void>)[]): Promise<void> {
  const host = machine();
  if (!gc) progress('warning: global.gc is not exposed; run with `node --expose-gc` for steadier numbers');
  const n = options.elements;
  const bytes = n * 8;
  const gb = bytes / 1e9;
  const expected = expectedSum(n);
  const ranges = splitRanges(n);
  const started = performance.now();

  progress(`starting Shoal (${WORKERS} workers)`);
  await init({ numCpus: WORKERS });
  closers.push(() => shutdown());

  progress(`filling ${n.toLocaleString('en-US')} doubles (${fmt(gb)} GB) in the object store`);
  let phase = performance.now();
  const writer = store.create(Float64Array, n);
  const shared = writer.array;
  for (let i = 0; i < n; i++) shared[i] = valueAt(i);
  const ref = writer.seal();
  const fillMs = performance.now() - phase;
  // The same values for the other contenders, copied (memcpy) rather than computed again.
  phase = performance.now();
  const sab = new SharedArrayBuffer(bytes);
  const local = new Float64Array(sab);
  local.set(shared);
  const copyMs = performance.now() - phase;
  progress(`  filled in ${fmt(fillMs)} ms; copied into a SharedArrayBuffer in ${fmt(copyMs)} ms`);

  const shoalSumRange = remote(sumRange);
  const shoal: Contender = {
    name: 'Shoal object store',
    maxRuns: options.runs,
    async sum() {
      const parts = await get(ranges.map(([start, end]) => shoalSumRange(ref, start, end)));
      return parts.reduce((a, b) => a + b, 0);
    },
    // The session (and its segment) goes with shutdown(), registered above.
    close: async () => {},
  };
  const single: Contender = {
    name: 'single thread, in-process',
    maxRuns: options.runs,
    sum: async () => sumRange(local, 0, n),
    close: async () => {},
  };
  progress('starting worker_threads and IPC children');
  const sabPool = await sabContender(sab, ranges, options.runs);
  closers.push(() => sabPool.close());
  const ipc = await ipcContender(local, ranges, options.runs);
  closers.push(() => ipc.close());
  const contenders = [shoal, sabPool, ipc, single];

  const check = (contender: Contender, total: number): void => {
    if (total !== expected) throw new Error(`${contender.name} summed to ${total}, expected ${expected}`);
  };

  // Warm-up: starts every pool for real, maps the segment in Shoal's workers and faults its pages
  // in, and gets the kernel optimized everywhere. Timed and reported, never counted.
  const warmUpMs: Record<string, number> = {};
  for (const contender of contenders) {
    settle();
    phase = performance.now();
    check(contender, await contender.sum());
    warmUpMs[contender.name] = performance.now() - phase;
    await contender.after?.();
    progress(`warm-up ${contender.name}: ${fmt(warmUpMs[contender.name])} ms`);
  }

  const times = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  /** Per run, name -> ms, to pair each contender with Shoal's time in the same run. */
  const byRun: Map<string, number>[] = [];
  for (let run = 0; run < options.runs; run++) {
    const active = contenders.filter((c) => run < c.maxRuns);
    const thisRun = new Map<string, number>();
    for (const contender of rotate(active, run)) {
      settle();
      const t0 = performance.now();
      const total = await contender.sum();
      const ms = performance.now() - t0;
      check(contender, total);
      await contender.after?.();
      times.get(contender.name)!.push(ms);
      thisRun.set(contender.name, ms);
    }
    byRun.push(thisRun);
    progress(`run ${run + 1}/${options.runs}: ${[...thisRun].map(([name, ms]) => `${name} ${fmt(ms)} ms`).join(', ')}`);
  }
  const elapsedS = (performance.now() - started) / 1000;

  /** Median over the runs that timed both of `a`'s time / `b`'s time in that same run. */
  const sameRun = (a: Contender, b: Contender): number =>
    median(
      byRun.flatMap((run) => {
        const mine = run.get(a.name);
        const base = run.get(b.name);
        return mine === undefined || base === undefined ? [] : [mine / base];
      }),
    );
  const summaries: Summary[] = contenders.map((c) => {
    const ms = stats(times.get(c.name)!);
    return { name: c.name, runs: ms.samples.length, ms, gbPerS: gb / (ms.median / 1000), overShoal: sameRun(c, shoal) };
  });
  const find = (c: Contender): Summary => summaries.find((s) => s.name === c.name)!;
  const shoalOverSab = sameRun(shoal, sabPool);
  const ipcOverShoal = sameRun(ipc, shoal);
  // IPC runs only in the first runs, and its aftermath (gigabytes freed) can slow whoever follows
  // it, so the ratio of the medians over all runs is shown next to the same-run one.
  const shoalOverSabOfMedians = find(shoal).ms.median / find(sabPool).ms.median;
  const ipcOverShoalOfMedians = find(ipc).ms.median / find(shoal).ms.median;
  const verdict = (met: boolean): string => (met ? 'met' : 'not met');

  console.log(
    `\nSum of a Float64Array of ${n.toLocaleString('en-US')} elements (${fmt(gb)} GB), ${WORKERS} workers, same kernel, steady state. ` +
      `${host.cpu}, ${host.cores} cores, node ${host.node}`,
  );
  console.log(
    renderTable(
      ['', 'runs', 'median ms', 'min ms', 'GB/s', '÷ Shoal', 'warm-up ms'],
      summaries.map((s) => [
        s.name,
        String(s.runs),
        fmt(s.ms.median),
        fmt(s.ms.min),
        fmt(s.gbPerS),
        fmt(s.overShoal),
        fmt(warmUpMs[s.name]),
      ]),
    ),
  );
  console.log(
    [
      '',
      '÷ Shoal: this time / Shoal\'s time in the same run, median over runs. GB/s at the median time.',
      `Shoal / SAB = ${fmt(shoalOverSab)} same-run, ${fmt(shoalOverSabOfMedians)} of medians ` +
        `(goal <= 1.1: ${verdict(shoalOverSab <= 1.1)}, ${verdict(shoalOverSabOfMedians <= 1.1)})`,
      `IPC / Shoal = ${fmt(ipcOverShoal)} same-run, ${fmt(ipcOverShoalOfMedians)} of medians ` +
        `(goal >= 40: ${verdict(ipcOverShoal >= 40)}, ${verdict(ipcOverShoalOfMedians >= 40)})`,
      `fill ${fmt(fillMs)} ms, SAB copy ${fmt(copyMs)} ms; total ${fmt(elapsedS)} s`,
    ].join('\n'),
  );

  const file = writeResults('seed', {
    benchmark: 'seed',
    date: new Date().toISOString(),
    machine: host,
    options: { ...options, workers: WORKERS, bytes, maxIpcRuns: MAX_IPC_RUNS },
    elapsedS,
    fillMs,
    sabCopyMs: copyMs,
    warmUpMs,
    shoalOverSab,
    ipcOverShoal,
    ratiosOfMedians: { shoalOverSab: shoalOverSabOfMedians, ipcOverShoal: ipcOverShoalOfMedians },
    goals: { shoalOverSabAtMost: 1.1, ipcOverShoalAtLeast: 40 },
    results: summaries,
  });
  progress(`wrote ${file}`);
}

const closers: (() => Promise<void>)[] = [];
try {
  await main(parseOptions(process.argv.slice(2)), closers);
} catch (error) {
  process.exitCode = 1;
  console.error(error);
} finally {
  // Reverse order of start-up; one failing close must not leave the others running.
  for (const close of closers.reverse()) {
    await close().catch((error: unknown) => console.error('while shutting down:', error));
  }
}
