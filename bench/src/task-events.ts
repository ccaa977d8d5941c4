// What the node's task events cost per task: NodeMetrics' submitted/started/ended (the metrics'
// plain counts and histogram buckets, and the diagnostics channels' hasSubscribers checks), timed
// in a loop against the same loop without them (the peer: making the task and its timestamps).
//
//   node bench/dist/task-events.js [--quick] [--runs=N]
//
// Prints nanoseconds per task (medians over runs) and writes bench/results/task-events.json. Put
// next to a task's cost on the node (tens of µs: the tasks suite's 20,000 tasks/s on two cores),
// it is the metrics' share of the task path.
import { NodeMetrics } from '@shoal/runtime';
import { machine, median, parseFlags, progress, writeResults } from './common.js';

const flags = parseFlags(process.argv.slice(2), []);
const runs = flags.runs ?? (flags.quick ? 3 : 7);
const tasks = flags.quick ? 100_000 : 1_000_000;
const metrics = new NodeMetrics('bench', () => ({}) as never, () => 0);
const fn = { name: 'add', hash: 'h', source: '' };

type BenchTask = { fn: typeof fn; returnId: string; attempts: number; submittedAt: number; startedAt: number; ranOn: number };
function loop(withEvents: boolean): number {
  const started = performance.now();
  for (let i = 0; i < tasks; i++) {
    const task: BenchTask = { fn, returnId: `r${i & 1023}`, attempts: 1, submittedAt: performance.now(), startedAt: 0, ranOn: 0 };
    if (withEvents) metrics.submitted(task as never);
    task.startedAt = performance.now();
    task.ranOn = 4242;
    if (withEvents) {
      metrics.started(task as never, 1);
      metrics.ended(task as never);
    }
  }
  return ((performance.now() - started) / tasks) * 1e6;
}

const withEvents: number[] = [];
const without: number[] = [];
for (let run = 1; run <= runs; run++) {
  // Alternating, so both share the machine's drift.
  without.push(loop(false));
  withEvents.push(loop(true));
  progress(`run ${run}/${runs}: ${withEvents.at(-1)!.toFixed(0)} ns with the task events, ${without.at(-1)!.toFixed(0)} ns without`);
}
const added = withEvents.map((value, i) => value - without[i]!);
const report = { runs, tasks, nsPerTaskWithEvents: median(withEvents), nsPerTaskWithout: median(without), nsAddedPerTask: median(added) };
console.log(`Task events (metrics + channel checks), ${tasks.toLocaleString('en')} tasks, ${runs} runs: ${report.nsAddedPerTask.toFixed(0)} ns added per task (${report.nsPerTaskWithEvents.toFixed(0)} with, ${report.nsPerTaskWithout.toFixed(0)} without, medians)`);
console.log(`= ${((report.nsAddedPerTask / 50_000) * 100).toFixed(2)}% of a task at 20,000 tasks/s (50 µs each)`);
writeResults('task-events', { benchmark: 'task-events', date: new Date().toISOString(), machine: machine(), ...report });
