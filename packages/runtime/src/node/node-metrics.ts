import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FunctionTally, TaskFailure, TaskSummary } from '@shoal/protocol';
import type { NodeLoad } from './node-load.js';
import type { Task } from '../scheduling/task.js';
import type { TaskEvents } from '../scheduling/scheduler-ports.js';
import { publishTaskEnd, publishTaskStart } from '../diagnostics.js';

/** Buckets of the task histograms, in seconds: 100 µs to 1 min. */
const TASK_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60];

/** Failures a node remembers for the dashboard. */
const FAILURES_KEPT = 20;

/** The children of one function's labelled metrics, made once (a labelled lookup hashes its labels). */
interface FunctionMetrics {
  readonly tally: FunctionTally;
  readonly submitted: Counter.Internal;
  readonly started: Counter.Internal;
  readonly finished: Counter.Internal;
  readonly failed: Counter.Internal;
  readonly queued: Histogram.Internal<'function'>;
  readonly ran: Histogram.Internal<'function'>;
}

/**
 * A node's Prometheus metrics (prom-client, in a registry of its own: several nodes may share a
 * process). Task counters and histograms move as tasks do, through the scheduler's
 * {@link TaskEvents} (which also publish the diagnostics channels); gauges are read from the node
 * when scraped. Other parts register theirs in {@link NodeMetrics.registry} (the cluster node's
 * transfers). Served as `/metrics` on the node's data port in a cluster.
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
  readonly registry = new Registry();
  readonly #submitted: Counter<'function'>;
  readonly #started: Counter<'function'>;
  readonly #finished: Counter<'function'>;
  readonly #failed: Counter<'function'>;
  readonly #queued: Histogram<'function'>;
  readonly #ran: Histogram<'function'>;
  readonly #exits: Counter;
  readonly #byName = new Map<string, FunctionMetrics>();
  readonly #failures: TaskFailure[] = [];
  /** What the gauges of the scrape going on read: the node is read once per scrape. */
  #reading: { load: NodeLoad; actors: number } | undefined;

  /** `load`: the node's load when scraped; `actors`: its live actors. */
  constructor(nodeId: string, load: () => NodeLoad, actors: () => number) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: nodeId });
    const tasks = (name: string, help: string) => new Counter({ name, help, labelNames: ['function'] as const, registers });
    this.#submitted = tasks('shoal_tasks_submitted_total', 'Tasks submitted to this node (from its programs, tasks and the head)');
    this.#started = tasks('shoal_tasks_started_total', 'Task runs started on a worker of this node (each attempt)');
    this.#finished = tasks('shoal_tasks_finished_total', 'Tasks of this node that produced their result');
    this.#failed = tasks('shoal_tasks_failed_total', 'Tasks of this node that failed for good (after retries) or were cancelled');
    const histogram = (name: string, help: string) => new Histogram({ name, help, labelNames: ['function'] as const, buckets: TASK_BUCKETS, registers });
    this.#queued = histogram('shoal_task_queue_seconds', 'From submission to the first start on a worker of this node');
    this.#ran = histogram('shoal_task_run_seconds', 'From the start of its last run to the end of a task that ran here');
    this.#exits = new Counter({ name: 'shoal_worker_exits_total', help: 'Worker processes of this node that exited (crashed, killed, or stopped when idle)', registers });
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
  }

  /** The metrics in Prometheus's text format. */
  text(): Promise<string> {
    this.#reading = undefined;
    return this.registry.metrics();
  }

  /** Tasks by function and the last failures, for the dashboard (`/api/tasks` on the data port). */
  summary(): TaskSummary {
    return { functions: [...this.#byName.values()].map((metrics) => ({ ...metrics.tally })), failures: [...this.#failures] };
  }

  submitted(task: Task): void {
    const metrics = this.#of(task.fn.name);
    metrics.submitted.inc();
    metrics.tally.submitted += 1;
  }

  started(task: Task, workerPid: number): void {
    const metrics = this.#of(task.fn.name);
    metrics.started.inc();
    metrics.tally.started += 1;
    if (task.attempts === 1) metrics.queued.observe((task.startedAt - task.submittedAt) / 1000);
    publishTaskStart(task, workerPid);
  }

  ended(task: Task, error?: Error): void {
    const metrics = this.#of(task.fn.name);
    if (error === undefined) {
      metrics.finished.inc();
      metrics.tally.finished += 1;
    } else {
      metrics.failed.inc();
      metrics.tally.failed += 1;
      this.#remember(task, error);
    }
    // A task that ran elsewhere (spilled) or never started has no run here.
    if (task.startedAt > 0) {
      const seconds = (performance.now() - task.startedAt) / 1000;
      metrics.ran.observe(seconds);
      metrics.tally.runs += 1;
      metrics.tally.runSeconds += seconds;
    }
    publishTaskEnd(task, error);
  }

  /**
   * The transfer metrics of the node's cluster agent: `shoal_pulls_total` and
   * `shoal_pulled_bytes_total` (read from `stats` when scraped) and the `shoal_pull_seconds`
   * histogram, which the returned function observes (a pull's duration in ms).
   */
  transfers(stats: { readonly pulls: number; readonly pulledBytes: number }): (durationMs: number) => void {
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
    return (durationMs) => seconds.observe(durationMs / 1000);
  }

  /** A worker process of this node exited. */
  workerExited(): void {
    this.#exits.inc();
  }

  #remember(task: Task, error: Error): void {
    // A task error's own error is its cause: that is what the user threw.
    const thrown = error.cause instanceof Error ? error.cause : error;
    this.#failures.unshift({ name: task.fn.name, returnId: task.returnId, at: Date.now(), error: thrown.name, message: thrown.message, stack: thrown.stack });
    if (this.#failures.length > FAILURES_KEPT) this.#failures.pop();
  }

  #of(name: string): FunctionMetrics {
    let metrics = this.#byName.get(name);
    if (!metrics) {
      const labels = { function: name };
      metrics = {
        tally: { name, submitted: 0, started: 0, finished: 0, failed: 0, runs: 0, runSeconds: 0 },
        submitted: this.#submitted.labels(labels),
        started: this.#started.labels(labels),
        finished: this.#finished.labels(labels),
        failed: this.#failed.labels(labels),
        queued: this.#queued.labels(labels),
        ran: this.#ran.labels(labels),
      };
      this.#byName.set(name, metrics);
    }
    return metrics;
  }
}
