import type { Registry } from 'prom-client';
import type { FunctionTally, TaskFailure, TaskSummary } from '@shoal/protocol';
import type { NodeLoad } from './node-load.js';
import type { Task } from '../scheduling/task.js';
import type { TaskEvents } from '../scheduling/scheduler-ports.js';
import { publishTaskEnd, publishTaskStart } from '../diagnostics.js';
import { Timeline } from './timeline.js';
import { promClient } from '../prom-client.js';

/** A pull that succeeded: the object, its size, the data server it came from and `performance.now()` at its start. */
export interface PullDone {
  readonly id: string;
  readonly size: number;
  readonly from: string;
  readonly startedAt: number;
}

/** Buckets of the task histograms, in seconds: 100 µs to 1 min. */
const TASK_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60];

/** Failures a node remembers for the dashboard, and the characters kept of each one's texts. */
const FAILURES_KEPT = 20;
const FAILURE_TEXT_KEPT = 4096;

/** A histogram's counts kept as plain numbers: one per bucket (not cumulative), their sum and count. */
class Buckets {
  readonly counts = new Float64Array(TASK_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < TASK_BUCKETS.length && seconds > TASK_BUCKETS[i]!) i++;
    this.counts[i]! += 1;
    this.sum += seconds;
    this.count += 1;
  }
}

/** One function's tasks on this node, counted in plain numbers (turned into metrics when scraped). */
interface FunctionMetrics {
  readonly name: string;
  submitted: number;
  started: number;
  finished: number;
  failed: number;
  readonly queued: Buckets;
  readonly ran: Buckets;
}

/**
 * A metric prom-client's registry renders from what `values()` says when scraped (the registry
 * needs only `name` and `get()`; its `Metric` type names a class's internals, hence the casts).
 */
function scrapedMetric(name: string, help: string, type: 'counter' | 'histogram', values: () => { metricName?: string; labels: Record<string, string | number>; value: number }[]) {
  return { name, help, type, get: () => ({ name, help, type, aggregator: 'sum' as const, values: values() }) };
}

/**
 * A node's Prometheus metrics (prom-client, in a registry of its own: several nodes may share a
 * process). What tasks do is counted in plain numbers per function as it happens, through the
 * scheduler's {@link TaskEvents} (which also publish the diagnostics channels), and turned into
 * counters and histograms when scraped: a task costs a few additions, no label hashing. Gauges
 * are read from the node when scraped. Other parts register theirs in {@link NodeMetrics.registry}
 * (the cluster node's transfers). Served as `/metrics` on the node's data port in a cluster.
 *
 * | metric | kind | labels |
 * |---|---|---|
 * | `shoal_tasks_submitted_total`, `_started_total`, `_finished_total`, `_failed_total` | counter | `function` |
 * | `shoal_task_queue_seconds` (submitted → first start here), `shoal_task_run_seconds` (start → end) | histogram | `function` |
 * | `shoal_tasks_queued`, `shoal_tasks_running`, `shoal_workers`, `shoal_actors` | gauge | |
 * | `shoal_worker_exits_total` (crashed, killed, or stopped when idle: with `shoal_workers`, the restarts) | counter | |
 * | `shoal_store_used_bytes`, `shoal_store_capacity_bytes`, `shoal_store_objects`, `shoal_spilled_bytes` | gauge | |
 * | `shoal_resources_total`, `shoal_resources_available` | gauge | `resource` |
 * | `shoal_pulls_total`, `shoal_pulled_bytes_total` (counters), `shoal_pull_seconds` (histogram): see {@link NodeMetrics.transfers} | | |
 *
 * Every metric carries `node` (the node's id).
 */
export class NodeMetrics implements TaskEvents {
  /** The node's last task runs and pulls (`/api/timeline` on the data port, `shoal timeline`). */
  readonly timeline = new Timeline();
  readonly #nodeId: string;
  readonly #load: () => NodeLoad;
  readonly #actors: () => number;
  #registry: Registry | undefined;
  #exits = 0;
  readonly #byName = new Map<string, FunctionMetrics>();
  readonly #failures: TaskFailure[] = [];
  /** What the gauges of the scrape going on read: the node is read once per scrape. */
  #reading: { load: NodeLoad; actors: number } | undefined;

  /** `load`: the node's load when scraped; `actors`: its live actors. */
  constructor(nodeId: string, load: () => NodeLoad, actors: () => number) {
    this.#nodeId = nodeId;
    this.#load = load;
    this.#actors = actors;
  }

  /**
   * The node's prom-client registry, made (and prom-client loaded) at first use: a node whose
   * metrics are never served (an embedded one) counts in plain numbers only.
   */
  get registry(): Registry {
    return (this.#registry ??= this.#makeRegistry());
  }

  #makeRegistry(): Registry {
    const { Gauge, Registry } = promClient();
    const registry = new Registry();
    const registers = [registry];
    const [load, actors] = [this.#load, this.#actors];
    registry.setDefaultLabels({ node: this.#nodeId });
    const functions = () => [...this.#byName.values()];
    const count = (name: string, help: string, of: (metrics: FunctionMetrics) => number) =>
      registry.registerMetric(scrapedMetric(name, help, 'counter', () => functions().map((metrics) => ({ labels: { function: metrics.name }, value: of(metrics) }))) as never);
    count('shoal_tasks_submitted_total', 'Tasks submitted to this node (from its programs, tasks and the head)', (metrics) => metrics.submitted);
    count('shoal_tasks_started_total', 'Task runs started on a worker of this node (each attempt)', (metrics) => metrics.started);
    count('shoal_tasks_finished_total', 'Tasks of this node that produced their result', (metrics) => metrics.finished);
    count('shoal_tasks_failed_total', 'Tasks of this node that failed for good (after retries) or were cancelled', (metrics) => metrics.failed);
    const histogram = (name: string, help: string, of: (metrics: FunctionMetrics) => Buckets) =>
      registry.registerMetric(
        scrapedMetric(name, help, 'histogram', () =>
          functions().flatMap((metrics) => {
            const buckets = of(metrics);
            const labels = { function: metrics.name };
            let cumulative = 0;
            const values = [...TASK_BUCKETS, '+Inf'].map((le, i) => {
              cumulative += buckets.counts[i]!;
              return { metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative };
            });
            return [...values, { metricName: `${name}_sum`, labels, value: buckets.sum }, { metricName: `${name}_count`, labels, value: buckets.count }];
          }),
        ) as never,
      );
    histogram('shoal_task_queue_seconds', 'From submission to the first start on a worker of this node', (metrics) => metrics.queued);
    histogram('shoal_task_run_seconds', 'From the start of its last run to the end of a task that ran here', (metrics) => metrics.ran);
    registry.registerMetric(
      scrapedMetric('shoal_worker_exits_total', 'Worker processes of this node that exited (crashed, killed, or stopped when idle)', 'counter', () => [{ labels: {}, value: this.#exits }]) as never,
    );
    const now = () => (this.#reading ??= { load: load(), actors: actors() });
    const gauge = (name: string, help: string, value: (at: { load: NodeLoad; actors: number }) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value(now()));
        },
      });
    gauge('shoal_tasks_queued', 'Tasks waiting or ready on this node, not running', (at) => at.load.queuedTasks);
    gauge('shoal_tasks_running', 'Tasks running on workers of this node', (at) => at.load.runningTasks);
    gauge('shoal_workers', 'Worker processes of this node', (at) => at.load.workers);
    gauge('shoal_actors', 'Live actors of this node', (at) => at.actors);
    gauge('shoal_store_used_bytes', 'Bytes of shared memory this node store holds', (at) => at.load.objectBytes);
    gauge('shoal_store_capacity_bytes', 'The capacity of this node store', (at) => at.load.capacityBytes);
    gauge('shoal_store_objects', 'Objects this node store holds', (at) => at.load.objects);
    gauge('shoal_spilled_bytes', 'Bytes of objects on disk only (spilled)', (at) => at.load.spill?.spilledBytes ?? 0);
    const resources = (name: string, help: string, of: (at: NodeLoad) => Readonly<Record<string, number>>) =>
      new Gauge({
        name,
        help,
        labelNames: ['resource'] as const,
        registers,
        collect() {
          this.reset();
          for (const [resource, amount] of Object.entries(of(now().load))) this.set({ resource }, amount);
        },
      });
    resources('shoal_resources_total', 'Resources of this node (CPU, and those it was started with)', (at) => at.resources);
    resources('shoal_resources_available', 'Resources of this node not leased now', (at) => at.available);
    return registry;
  }

  /** The metrics in Prometheus's text format. */
  text(): Promise<string> {
    this.#reading = undefined;
    return this.registry.metrics();
  }

  /** Tasks by function and the last failures, for the dashboard (`/api/tasks` on the data port). */
  summary(): TaskSummary {
    const functions = [...this.#byName.values()].map(({ name, submitted, started, finished, failed, ran }): FunctionTally => ({ name, submitted, started, finished, failed, runs: ran.count, runSeconds: ran.sum }));
    return { functions, failures: [...this.#failures] };
  }

  submitted(task: Task): void {
    // A task the head sent here was counted where its program submitted it.
    if (!task.forwarded) this.#of(task.fn.name).submitted += 1;
  }

  started(task: Task, workerPid: number): void {
    const metrics = this.#of(task.fn.name);
    metrics.started += 1;
    if (task.attempts === 1) metrics.queued.observe((task.startedAt - task.submittedAt) / 1000);
    publishTaskStart(task, workerPid);
  }

  ended(task: Task, error?: Error): void {
    publishTaskEnd(task, error);
    // A task that ran on another node ended there too, and is counted there.
    if (task.spilled && task.startedAt === 0) return;
    const metrics = this.#of(task.fn.name);
    if (error === undefined) metrics.finished += 1;
    else {
      metrics.failed += 1;
      this.#remember(task, error);
    }
    // A task that never started (cancelled or infeasible while queued) has no run.
    if (task.startedAt > 0) {
      metrics.ran.observe((performance.now() - task.startedAt) / 1000);
      this.timeline.taskRan(task.fn.name, task.returnId, task.ranOn, task.startedAt, error !== undefined);
    }
  }

  retried(task: Task): void {
    // The run that failed is a span of its own; the next run's is written when it ends.
    if (task.startedAt > 0) this.timeline.taskRan(task.fn.name, task.returnId, task.ranOn, task.startedAt, true);
  }

  /**
   * The transfer metrics of the node's cluster agent: `shoal_pulls_total` and
   * `shoal_pulled_bytes_total` (read from `stats` when scraped) and the `shoal_pull_seconds`
   * histogram, which the returned function observes (a pull that succeeded: it also goes on the
   * timeline; `startedAt` is its `performance.now()` at the start).
   */
  transfers(stats: { readonly pulls: number; readonly pulledBytes: number }): (pull: PullDone) => void {
    const { Counter, Histogram } = promClient();
    const registers = [this.registry];
    const total = (name: string, help: string, value: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value());
        },
      });
    total('shoal_pulls_total', 'Objects this node pulled from other nodes', () => stats.pulls);
    total('shoal_pulled_bytes_total', 'Bytes of the objects this node pulled from other nodes', () => stats.pulledBytes);
    const seconds = new Histogram({ name: 'shoal_pull_seconds', help: 'From the start of a pull to the object sealed here', buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 120], registers });
    return (pull) => {
      seconds.observe((performance.now() - pull.startedAt) / 1000);
      this.timeline.pulled(pull.id, pull.size, pull.from, pull.startedAt);
    };
  }

  /** A worker process of this node exited. */
  workerExited(): void {
    this.#exits += 1;
  }

  #remember(task: Task, error: Error): void {
    // A task error's own error is its cause: that is what the user threw.
    const thrown = error.cause instanceof Error ? error.cause : error;
    const cut = (text: string) => (text.length > FAILURE_TEXT_KEPT ? `${text.slice(0, FAILURE_TEXT_KEPT)}…` : text);
    this.#failures.unshift({ name: task.fn.name, returnId: task.returnId, at: Date.now(), error: cut(String(thrown.name)), message: cut(String(thrown.message)), stack: thrown.stack === undefined ? undefined : cut(String(thrown.stack)) });
    if (this.#failures.length > FAILURES_KEPT) this.#failures.pop();
  }

  #of(name: string): FunctionMetrics {
    let metrics = this.#byName.get(name);
    if (!metrics) {
      metrics = { name, submitted: 0, started: 0, finished: 0, failed: 0, queued: new Buckets(), ran: new Buckets() };
      this.#byName.set(name, metrics);
    }
    return metrics;
  }
}
