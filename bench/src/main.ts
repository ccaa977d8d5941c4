// The benchmark suite's one entry point: `npm run bench` (full) or `npm run bench -- --quick`.
//
//   node --expose-gc bench/dist/main.js [--quick] [--json] [--only=article,ray,tasks,actors,store,args,spill,cold,cluster,cluster-netns]
//                                       [--runs=N] [--elements=N] [--queued=N] [--mib=N] [--mbit=N]
//
// Suites, in this order:
//   article  the seed article's table in Node (article.ts): a 1.5 GB Float64Array summed by one
//            worker per core, every way of sharing it, plus the floors; bench/results/article.svg
//   ray      Ray's microbenchmarks under Ray's names, with Ray's published figures and same-run
//            peers (ray-micro.ts), and tasks_1m_queued
//   tasks    task throughput/latency vs Piscina and a fork pool, and the transport (tasks.js)
//   actors   Ray's actor microbenchmarks under Ray's names and a stream's items/s, vs a raw
//            unix-socket echo and fork IPC in the same run (actors.js)
//   store    object store put/get vs in-process copies (store-put-get.js)
//   args     what a task pays for its argument's size and for writing to it (task-args.js)
//   spill    spill and restore throughput against fs.promises, and a working set 4x the store
//            streamed through tasks (spill.js)
//   cold     cold start and exit: fresh processes of Shoal (import, init(), a first task,
//            shutdown()), Piscina and the quickstart, against a bare `node -e 0` (cold-start.js)
//   cluster  object_transfer_1gb and broadcast_1gb_to_3_nodes between `shoal start` nodes on
//            loopback, vs raw TCP in the same run (cluster.ts); --mib=N sets the object size
//   cluster-netns  only when named in --only (root only, skipped with the reason otherwise): the
//            cluster suite with each node in a network namespace of its own, on links shaped with
//            tbf to --mbit=N Mbit/s each way (default 1000; shaped-network.ts)
// `--quick` runs every suite at small sizes in seconds (the CI smoke: `npm test` ends with it).
// Progress goes to stderr, tables to stdout; `--json` prints the combined report on stdout
// instead (tables then go to stderr). Results: bench/results/bench.json (bench-quick.json with
// --quick), article.json, ray-microbenchmarks.json, cluster.json, article.svg; tasks.js and
// store-put-get.js write their own tasks.json and store-put-get.json.
//
// The exit status is 1 if any row produced no finite number (or a suite failed): the only check,
// so the smoke never fails on a slow CI machine. Goals (the article's ratios) are reported, not
// enforced.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { articleOptions, articleTable, goalLine, interferenceLine, runArticle, type ArticleReport } from './article.js';
import { articleChart } from './chart.js';
import { clusterGoalLine, clusterOptions, clusterTable, runCluster, type ClusterReport, type ClusterSkipped } from './cluster.js';
import { fmt, gc, machine, parseFlags, progress, writeResults } from './common.js';
import { isDisturbed } from './interference.js';
import { exitOnSignals, killAtExit } from './lifecycle.js';
import { rayOptions, rayTable, runRay, type RayReport } from './ray-micro.js';

/** Every suite, in the order they run; those in OPT_IN only when --only names them. */
const SUITES = ['article', 'ray', 'tasks', 'actors', 'store', 'args', 'spill', 'cold', 'cluster', 'cluster-netns'] as const;
type Suite = (typeof SUITES)[number];
/** Needs root and makes network namespaces: never part of a plain run or the CI smoke. */
const OPT_IN: readonly Suite[] = ['cluster-netns'];
const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
type External = 'tasks' | 'actors' | 'store' | 'args' | 'spill' | 'cold';
const EXTERNAL: Record<External, { script: string; results: string }> = {
  tasks: { script: fileURLToPath(new URL('./tasks.js', import.meta.url)), results: 'tasks' },
  actors: { script: fileURLToPath(new URL('./actors.js', import.meta.url)), results: 'actors' },
  store: { script: fileURLToPath(new URL('./store-put-get.js', import.meta.url)), results: 'store-put-get' },
  args: { script: fileURLToPath(new URL('./task-args.js', import.meta.url)), results: 'task-args' },
  spill: { script: fileURLToPath(new URL('./spill.js', import.meta.url)), results: 'spill' },
  cold: { script: fileURLToPath(new URL('./cold-start.js', import.meta.url)), results: 'cold-start' },
};

interface Options {
  quick: boolean;
  json: boolean;
  only: Suite[];
  runs: number | undefined;
  elements: number | undefined;
  queued: number | undefined;
  mib: number | undefined;
  mbit: number | undefined;
}

function parseOptions(argv: readonly string[]): Options {
  let json = false;
  let only: Suite[] = SUITES.filter((suite) => !OPT_IN.includes(suite));
  const rest: string[] = [];
  for (const arg of argv) {
    if (arg === '--json') json = true;
    else if (arg.startsWith('--only=')) {
      const names = arg.slice('--only='.length).split(',').filter(Boolean);
      const unknown = names.filter((name) => !(SUITES as readonly string[]).includes(name));
      if (unknown.length > 0 || names.length === 0) throw new Error(`Unknown suite in \`${arg}\`; known: ${SUITES.join(', ')}`);
      only = SUITES.filter((suite) => names.includes(suite));
    } else rest.push(arg);
  }
  const flags = parseFlags(rest, ['elements', 'queued', 'mib', 'mbit']);
  return { quick: flags.quick, json, only, runs: flags.runs, elements: flags.elements, queued: flags.queued, mib: flags.mib, mbit: flags.mbit };
}

/** A row (or a whole suite) that produced no finite number. */
interface Failure {
  suite: Suite;
  row: string;
  problem: string;
}

/** Every `median` in a results tree, with its path: the numbers the external suites report. */
function medians(value: unknown, path: string, found: [string, unknown][] = []): [string, unknown][] {
  if (Array.isArray(value)) value.forEach((item, i) => medians(item, `${path}[${i}]`, found));
  else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (key === 'median') found.push([path, item]);
      else medians(item, path === '' ? key : `${path}.${key}`, found);
    }
  }
  return found;
}

async function runExternal(suite: External, options: Options, log: (text: string) => void): Promise<{ report: unknown; failures: Failure[] }> {
  const { script, results } = EXTERNAL[suite];
  const started = Date.now();
  log(`running ${script.split('/').pop()}${options.quick ? ' --quick' : ''}`);
  // With --json, stdout is the report's: the child's tables go to stderr.
  const child = spawn(process.execPath, ['--expose-gc', script, ...(options.quick ? ['--quick'] : [])], {
    stdio: ['ignore', options.json ? 2 : 'inherit', 'inherit'],
  });
  const stop = killAtExit(child);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  await stop();
  if (code !== 0) return { report: undefined, failures: [{ suite, row: '*', problem: `${script} exited with code ${code}, signal ${signal}` }] };
  const report = JSON.parse(readFileSync(`${RESULTS_DIR}${results}.json`, 'utf8')) as { date?: string };
  if (report.date === undefined || Date.parse(report.date) < started) {
    return { report, failures: [{ suite, row: '*', problem: `${results}.json was not rewritten by this run` }] };
  }
  const found = medians(report, '');
  const failures: Failure[] = found
    .filter(([, value]) => typeof value !== 'number' || !Number.isFinite(value))
    .map(([path, value]) => ({ suite, row: path, problem: `median is ${String(value)}` }));
  if (found.length === 0) failures.push({ suite, row: '*', problem: 'no results' });
  return { report, failures };
}

function articleFailures(report: ArticleReport): Failure[] {
  return report.rows
    .filter((row) => !Number.isFinite(row.ms.median) || !Number.isFinite(row.ms.min))
    .map((row) => ({ suite: 'article', row: row.name, problem: `median ${row.ms.median}, min ${row.ms.min}` }));
}

function rayFailures(report: RayReport): Failure[] {
  const failures: Failure[] = [];
  for (const row of report.rows) {
    if (!Number.isFinite(row.shoal.median)) failures.push({ suite: 'ray', row: row.name, problem: `Shoal median ${row.shoal.median}` });
    for (const peer of row.peers) {
      if (!Number.isFinite(peer.rate.median)) failures.push({ suite: 'ray', row: `${row.name} / ${peer.name}`, problem: `median ${peer.rate.median}` });
    }
  }
  for (const result of [report.queued.shoal, ...report.queued.peers]) {
    if (!Number.isFinite(result.totalMs) || !Number.isFinite(result.peakRssBytes)) {
      failures.push({ suite: 'ray', row: `tasks_1m_queued / ${result.who}`, problem: `total ${result.totalMs} ms, peak RSS ${result.peakRssBytes}` });
    }
  }
  return failures;
}

function clusterFailures(suite: 'cluster' | 'cluster-netns', report: ClusterReport): Failure[] {
  const failures: Failure[] = [];
  const rows: [string, number][] = [
    ['object_transfer_1gb', report.transfer.ms.median],
    ['object_transfer_1gb / raw TCP', report.tcp.ms.median],
    ['object_transfer_1gb / raw TCP into /dev/shm', report.tcpShm.ms.median],
    ['broadcast_1gb_to_3_nodes / raw TCP', report.tcpBroadcast.ms.median],
    ['broadcast_1gb_to_3_nodes', report.broadcast.ms.median],
  ];
  for (const [row, ms] of rows) if (!Number.isFinite(ms)) failures.push({ suite, row, problem: `median ${ms}` });
  for (const problem of report.problems) failures.push({ suite, row: '*', problem });
  return failures;
}

const describe = (error: unknown): string => (error instanceof Error ? (error.stack ?? error.message) : String(error));

async function main(options: Options): Promise<number> {
  const started = performance.now();
  const host = machine();
  const suffix = options.quick ? '-quick' : '';
  const print = (text: string): void => {
    if (options.json) process.stderr.write(`${text}\n`);
    else console.log(text);
  };
  const logFor =
    (suite: Suite) =>
    (text: string): void =>
      progress(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${suite}: ${text}`);
  if (!gc) progress('warning: global.gc is not exposed; run with `node --expose-gc` for steadier numbers');
  progress(
    `Shoal benchmarks${options.quick ? ' (--quick: small sizes, a smoke test, not figures)' : ''}: ${options.only.join(', ')}. ` +
      `${host.cpu}, ${host.cores} cores, ${fmt(host.totalMemBytes / 1e9)} GB, node ${host.node}, load ${fmt(host.loadAverage1mAtStart ?? Number.NaN)}`,
  );

  const failures: Failure[] = [];
  const suites: Partial<Record<Suite, unknown>> = {};
  const files: string[] = [];
  let article: ArticleReport | undefined;

  for (const suite of options.only) {
    const log = logFor(suite);
    const suiteStarted = performance.now();
    try {
      if (suite === 'article') {
        article = await runArticle(articleOptions(options), log);
        suites.article = article;
        failures.push(...articleFailures(article));
        print(`\n${articleTable(article, host)}\n`);
        files.push(writeResults(`article${suffix}`, { benchmark: 'article', date: new Date().toISOString(), machine: host, ...article }));
        mkdirSync(RESULTS_DIR, { recursive: true });
        const svg = `${RESULTS_DIR}article${suffix}.svg`;
        writeFileSync(
          svg,
          articleChart(
            article.rows.map((row) => ({
              name: row.name,
              ms: row.ms.median,
              article: row.article,
              highlight: row.key === 'shoal-store',
              reference: row.key === 'single' || row.key === 'bandwidth',
            })),
            `Sharing a ${fmt(article.options.bytes / 1e9)} GB Float64Array with ${article.options.workers} workers, summed in parallel (Node)`,
            `${host.cpu}, ${host.cores} cores, node ${host.node}; median of up to ${article.options.runs} runs; ` +
              'grey: the article\'s Python figures (4 cores)',
          ),
        );
        files.push(svg);
      } else if (suite === 'ray') {
        const ray = await runRay(rayOptions(options), log);
        suites.ray = ray;
        failures.push(...rayFailures(ray));
        print(`\n${rayTable(ray, host)}\n`);
        files.push(writeResults(`ray-microbenchmarks${suffix}`, { benchmark: 'ray-microbenchmarks', date: new Date().toISOString(), machine: host, ...ray }));
      } else if (suite === 'cluster' || suite === 'cluster-netns') {
        const cluster = await runCluster(clusterOptions(options, suite === 'cluster' ? 'loopback' : 'shaped'), log);
        suites[suite] = cluster;
        if ('skipped' in cluster) {
          // Not a failure: the exit status stays 0, as the netns test's skip does.
          print(`\n${suite} skipped: ${cluster.skipped}\n`);
        } else {
          failures.push(...clusterFailures(suite, cluster));
          print(`\n${clusterTable(cluster, host)}\n`);
          files.push(writeResults(`${suite}${suffix}`, { benchmark: suite, date: new Date().toISOString(), machine: host, ...cluster }));
        }
      } else {
        const { report, failures: found } = await runExternal(suite, options, log);
        suites[suite] = report;
        failures.push(...found);
        files.push(`${RESULTS_DIR}${EXTERNAL[suite].results}.json`);
      }
    } catch (error) {
      failures.push({ suite, row: '*', problem: describe(error) });
      progress(`${suite} failed: ${describe(error)}`);
    }
    logFor(suite)(`done in ${fmt((performance.now() - suiteStarted) / 1000)} s`);
    // Each suite's garbage (gigabytes after the article) is gone before the next one starts.
    gc?.();
  }

  const elapsedS = (performance.now() - started) / 1000;
  const report = {
    benchmark: 'shoal-bench',
    date: new Date().toISOString(),
    machine: host,
    options,
    elapsedS,
    goals: article?.goals ?? [],
    failures,
    suites,
  };
  files.unshift(writeResults(`bench${suffix}`, report));

  const closing = [`Done in ${fmt(elapsedS)} s.`];
  for (const goal of article?.goals ?? []) {
    closing.push(`Goal ${goalLine(goal)}: ${goal.met ? 'met' : 'NOT met'}.`);
  }
  if (options.quick && article) closing.push('(--quick sizes are far too small for the goals to mean anything.)');
  if (article && Object.values(article.interference).some(isDisturbed)) closing.push(interferenceLine(article));
  for (const suite of ['cluster', 'cluster-netns'] as const) {
    const cluster = suites[suite] as ClusterReport | ClusterSkipped | undefined;
    if (!cluster || 'skipped' in cluster) continue;
    closing.push(`Goal (${suite}) ${clusterGoalLine(cluster)}.`);
    if (options.quick) closing.push(`(--quick ${suite} sizes are far too small for the goals to mean anything.)`);
    if (isDisturbed(cluster.interference)) {
      closing.push(`${suite} suite disturbed: other processes used ${cluster.interference.otherCores.toFixed(2)} cores; rerun on a quiet machine.`);
    }
  }
  const ray = suites.ray as RayReport | undefined;
  if (ray && isDisturbed(ray.interference)) {
    closing.push(`Ray-named suite disturbed: other processes used ${ray.interference.otherCores.toFixed(2)} cores; rerun on a quiet machine.`);
  }
  for (const failure of failures) closing.push(`FAILED ${failure.suite} / ${failure.row}: ${failure.problem}`);
  closing.push(`Results: ${files.join(', ')}`);
  print(closing.join('\n'));
  if (options.json) console.log(JSON.stringify(report, null, 2));
  return failures.length > 0 ? 1 : 0;
}

exitOnSignals();
try {
  process.exitCode = await main(parseOptions(process.argv.slice(2)));
} catch (error) {
  console.error(error);
  process.exitCode = 1;
}
