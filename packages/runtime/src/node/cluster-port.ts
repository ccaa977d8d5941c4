import { HeadLostError, InfeasibleTaskError, type ActorDiedError, type ClusterArg, type ClusterResult, type ClusterTask, type OutputStream } from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';
import type { LocalScheduler, SpillTarget } from '../scheduling/local-scheduler.js';
import { describeResources, type Resources } from '../scheduling/resources.js';
import type { Task } from '../scheduling/task.js';
import type { ActorService } from './actors.js';
import { ClusterActors, type ActorClusterLink } from './cluster-actors.js';
import { clusterArgsOf } from './cluster-values.js';
import { ForeignTasks } from './foreign-tasks.js';
import type { ObjectService } from './object-service.js';
import type { TaskOutput } from './task-output.js';

/**
 * What a node that is part of a cluster gets from its cluster agent (see cluster/node/cluster-node.ts).
 * Without one the node is a cluster of one.
 */
export interface ClusterHooks {
  /**
   * Whether, by the head's last word, another node has room for `demand` now — and if so, that
   * room counts as taken until the next view (so call it only when the task will spill).
   */
  reserveElsewhere(demand: Readonly<Resources>): boolean;
  /** Hands a task that cannot start here to the head, with its arguments as they cross nodes. */
  spill(task: Task, args: ClusterArg[]): void;
  /** Fetches object `id` (made by node `owner`) into this node's store, which expects it. */
  fetch(id: string, owner: string): void;
  /** A task the head sent here ended: its result (kept here if in a segment) goes to `origin`. */
  finished(origin: string, returnId: string, result: ClusterResult): void;
  /** The submitter gave up on a spilled task. */
  cancel(returnId: string): void;
  /** Output of a task (or actor) run here for node `origin`, keyed by its returnId (or actor id), prefixed. */
  output(origin: string, key: string, stream: OutputStream, text: string): void;
  /** What the node's actors do through the cluster (the head and other nodes' data servers). */
  readonly actors: Omit<ActorClusterLink, 'fetch'>;
}

/**
 * The node as its cluster agent sees it (`node.cluster`): joining, tasks the head sent here for
 * other nodes, and the outcome of tasks this node spilled to the head.
 */
export class ClusterPort {
  readonly #store: ObjectStore;
  readonly #scheduler: LocalScheduler;
  readonly #objects: ObjectService;
  readonly #acceptsTasks: () => boolean;
  readonly #foreign: ForeignTasks;
  readonly #actorService: ActorService;
  readonly #output: TaskOutput;
  #hooks: ClusterHooks | undefined;
  #actors: ClusterActors | undefined;

  constructor(
    parts: { readonly store: ObjectStore; readonly scheduler: LocalScheduler; readonly objects: ObjectService; readonly actors: ActorService; readonly output: TaskOutput },
    acceptsTasks: () => boolean,
  ) {
    const { store, scheduler, objects } = parts;
    this.#output = parts.output;
    this.#store = store;
    this.#scheduler = scheduler;
    this.#objects = objects;
    this.#actorService = parts.actors;
    this.#acceptsTasks = acceptsTasks;
    this.#foreign = new ForeignTasks({
      store,
      scheduler,
      finished: (origin, returnId, result) => this.#hooks?.finished(origin, returnId, result),
    });
  }

  /** Whether the node joined a cluster. */
  get joined(): boolean {
    return this.#hooks !== undefined;
  }

  /** Where the scheduler sends tasks that cannot start here (set once the node joined). */
  spillTarget: SpillTarget | undefined;

  /** The node's side of actors in the cluster (once joined). */
  get actors(): ClusterActors {
    if (!this.#actors) throw new Error('the node has not joined a cluster');
    return this.#actors;
  }

  /**
   * Makes this node part of a cluster: tasks that cannot run here spill, missing objects are
   * fetched, actors that fit nowhere here are placed by the head, and actors of other nodes are
   * called where they run.
   */
  join(hooks: ClusterHooks): void {
    this.#hooks = hooks;
    this.#actors = new ClusterActors({
      store: this.#store,
      actors: this.#actorService,
      link: { ...hooks.actors, fetch: (id, _size, owner) => hooks.fetch(id, owner) },
    });
    this.#actorService.cluster = this.#actors;
    this.#objects.fetch = (id, owner) => hooks.fetch(id, owner);
    this.spillTarget = {
      reserveElsewhere: (demand) => hooks.reserveElsewhere(demand),
      spill: (task) => hooks.spill(task, clusterArgsOf(this.#store, task.args)),
      cancel: (returnId) => hooks.cancel(returnId),
    };
  }

  /**
   * Runs a task the head placed here for node `origin` (see ForeignTasks), calling `acknowledge`
   * first: a result already here is reported at once, and must not reach the head before the
   * acknowledgement. Returns false, calling nothing, once this node no longer accepts tasks (it is
   * closing): a run acknowledged then would be waited for by the head forever.
   */
  runForeign(origin: string, task: ClusterTask, fetch: (id: string, size: number) => void, acknowledge: () => void): boolean {
    if (!this.#acceptsTasks()) return false;
    acknowledge();
    this.#foreign.run(origin, task, fetch);
    return true;
  }

  /** Sends output of a task (or actor) run here to its origin node; false when not in a cluster. */
  sendOutput(origin: string, key: string, stream: OutputStream, text: string): boolean {
    if (!this.#hooks) return false;
    this.#hooks.output(origin, key, stream, text);
    return true;
  }

  /** Output another node sent for a task this node spilled there (or an actor it made). */
  receiveOutput(key: string, stream: OutputStream, text: string): void {
    this.#output.fromNode(key, stream, text);
  }

  /** Tells the head again of every actor running here (a head that restarted knows none). */
  announceActors(): void {
    if (!this.#actors) return;
    this.#actors.flush();
    this.#actorService.announce();
  }

  /** The head ended an actor running here (only its process, when `restart`), or says one this node made is dead. */
  actorEnded(actorId: string, death: ActorDiedError, restart: boolean): void {
    this.#actorService.ended(actorId, death, restart);
  }

  /** The origin has its copy of these results (or left the cluster): stop keeping them. */
  releaseKept(ids: readonly string[]): void {
    this.#foreign.release(ids);
    this.#actors?.release(ids);
  }

  /** Stops foreign tasks, and drops kept results, for which `match(returnId, origin)` holds (all by default). */
  dropForeign(match?: (returnId: string, origin: string) => boolean): void {
    this.#foreign.drop(match);
  }

  /** A task this node spilled ended elsewhere; `result` is its value, already in this store if a segment. */
  finishSpilled(returnId: string, result: { size: number; bytes?: Uint8Array; contains: readonly string[] }): boolean {
    const task = this.#spilled(returnId);
    if (!task) return false;
    this.#scheduler.succeed(task, result);
    return true;
  }

  /** A task this node spilled failed elsewhere (or could not be placed). */
  failSpilled(returnId: string, error: Error): void {
    const task = this.#spilled(returnId);
    if (task) this.#scheduler.fail(task, error);
  }

  /** The head found no room elsewhere: run the spilled task here after all. */
  declined(returnId: string): void {
    const task = this.#spilled(returnId);
    if (!task) return;
    this.#runHere(task);
    this.#scheduler.schedule();
  }

  /**
   * The connection to the head dropped: tasks this node spilled may never report back. Each runs
   * here instead if this node can ever run it (it may then run twice, like any retry), else fails.
   */
  reclaimSpilled(): void {
    for (const task of [...this.#scheduler.tasks.values()]) {
      if (task.state !== 'spilled') continue;
      if (task.placement === 'elsewhere') this.#scheduler.fail(task, new HeadLostError(task.fn.name));
      else this.#runHere(task);
    }
    this.#scheduler.schedule();
  }

  /** A spilled task back on this node: ready again, or infeasible if this node can never run it either. */
  #runHere(task: Task): void {
    if (task.placement === 'elsewhere') {
      const needs = `it needs ${describeResources(task.demand)}, and no node of the cluster offers that`;
      this.#scheduler.fail(task, new InfeasibleTaskError(task.fn.name, `${needs}; start a node that does, or ask for less`));
      return;
    }
    task.placement = 'local';
    this.#scheduler.readyAgain(task);
  }

  #spilled(returnId: string): Task | undefined {
    const task = this.#scheduler.tasks.get(returnId);
    return task && task.state === 'spilled' ? task : undefined;
  }
}
