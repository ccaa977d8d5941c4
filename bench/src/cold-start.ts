// Cold start and exit (issue 16, part 4): fresh processes, each timed from spawn to exit.
//
//   node bench/dist/cold-start.js [--quick] [--runs=N]
//
// Rows, each a new process per run, run in turn (A B C D A B C D ..., the order rotating):
//   node -e 0   a bare Node process: the floor of any process's start and exit
//   Shoal       import 'shoal', init(), one trivial task, shutdown() (cold-start-child.ts): each
//               step's time as the process measured it, and the whole process
//   Piscina     import piscina, a pool of 2 threads, one trivial task, destroy()
//   quickstart  examples/dist/quickstart.js as a user runs it: a 10M-element Float64Array built
//               and put, two tasks reading it, shutdown()
// Medians over runs; `× node` is each run's whole process over the bare node process of the same
// run, median over runs. Results: bench/results/cold-start.json.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { fmt, machine, median, parseFlags, progress, renderTable, rotate, writeResults } from './common.js';
import { exitOnSignals, killAtExit } from './lifecycle.js';

const CHILD = fileURLToPath(new URL('./cold-start-child.js', import.meta.url));
const QUICKSTART = fileURLToPath(new URL('../../examples/dist/quickstart.js', import.meta.url));

interface Steps {
  readonly nodeStart: number;
  readonly load: number;
  readonly init: number;
  readonly first: number;
  readonly shutdown: number;
}

interface Run {
  readonly wallMs: number;
  readonly steps?: Steps;
}

const ROWS: readonly { readonly name: string; readonly args: readonly string[]; readonly steps: boolean }[] = [
  { name: 'node -e 0', args: ['-e', '0'], steps: false },
  { name: 'Shoal', args: [CHILD, 'shoal'], steps: true },
  { name: 'Piscina', args: [CHILD, 'piscina'], steps: true },
  { name: 'quickstart', args: [QUICKSTART], steps: false },
];

/** Spawns one process and times it from spawn to exit (its 'exit': every stdio byte is read by then too). */
async function runOnce(args: readonly string[]): Promise<Run> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SHOAL_ADDRESS: 'embedded' } });
  const stop = killAtExit(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [exit] = await Promise.all([once(child, 'exit') as Promise<[number | null]>, once(child.stdout, 'end')]);
  const code = exit[0];
  const wallMs = performance.now() - started;
  await stop();
  if (code !== 0) throw new Error(`${args.join(' ')} exited with code ${code}`);
  const line = out.trim().split('\n').pop() ?? '';
  return { wallMs, ...(line.startsWith('{') ? { steps: JSON.parse(line) as Steps } : {}) };
}

async function main(): Promise<void> {
  exitOnSignals();
  const flags = parseFlags(process.argv.slice(2), []);
  const runs = flags.runs ?? (flags.quick ? 2 : 11);
  const results = new Map<string, Run[]>(ROWS.map((row) => [row.name, []]));
  // One warm-up of each (the page cache, not the processes: every run is a new process).
  for (const row of ROWS) await runOnce(row.args);
  for (let run = 0; run < runs; run++) {
    for (const row of rotate(ROWS, run)) results.get(row.name)!.push(await runOnce(row.args));
    progress(`cold start: run ${run + 1}/${runs}`);
  }
  const bare = results.get('node -e 0')!;
  const summary = ROWS.map((row) => {
    const samples = results.get(row.name)!;
    const step = (key: keyof Steps) => (row.steps ? median(samples.map((sample) => sample.steps![key])) : Number.NaN);
    return {
      name: row.name,
      wallMs: { median: median(samples.map((sample) => sample.wallMs)), min: Math.min(...samples.map((sample) => sample.wallMs)) },
      timesNode: { median: median(samples.map((sample, i) => sample.wallMs / bare[i]!.wallMs)) },
      ...(row.steps
        ? {
            nodeStartMs: { median: step('nodeStart') },
            loadMs: { median: step('load') },
            initMs: { median: step('init') },
            firstMs: { median: step('first') },
            initToFirstMs: { median: median(samples.map((sample) => sample.steps!.init + sample.steps!.first)) },
            shutdownMs: { median: step('shutdown') },
          }
        : {}),
    };
  });
  const header = ['', 'whole process ms', 'min', '× node -e 0', 'node start', 'import', 'start pool', 'first result', 'start → first', 'stop pool'];
  const cell = (value: { median: number } | undefined) => (value === undefined ? '' : fmt(value.median));
  const table = renderTable(
    header,
    summary.map((row) => [row.name, fmt(row.wallMs.median), fmt(row.wallMs.min), fmt(row.timesNode.median), cell(row.nodeStartMs), cell(row.loadMs), cell(row.initMs), cell(row.firstMs), cell(row.initToFirstMs), cell(row.shutdownMs)]),
  );
  const host = machine();
  process.stdout.write(`\nCold start and exit (${host.cpu}, ${host.cores} cores, node ${host.node}; ${runs} runs, medians; ms)\n${table}\n`);
  process.stdout.write('start → first: init() (or new Piscina) to the first result; the whole process is timed from spawn to exit by this process.\n');
  const file = writeResults('cold-start', { date: new Date().toISOString(), machine: host, runs, rows: summary });
  progress(`wrote ${file}`);
}

await main();
