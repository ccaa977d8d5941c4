// The driver of the cluster suite (cluster.ts), forked with SHOAL_HOME set to node A's home: it
// attaches to node A, puts objects there, and runs tasks that need a resource only other nodes
// offer, so every object must be pulled across a WebSocket into another node's /dev/shm. The
// parent sends one request at a time over IPC and gets one reply.
import { init, remote, shutdown, store, type ObjectRef } from 'shoal';

/** What the parent asks for. Every object is fresh, so each timed task really pulls it. */
export type DriverRequest =
  /** Tiny tasks on every node, so worker start-up, the function cache and data connections are warm. */
  | { op: 'warm'; rounds: number; nodes: number }
  /** The task latency with a small (1 MiB, not inline) argument, each a fresh object. */
  | { op: 'latency'; rounds: number }
  /** One task on node B (resource `gpu`) with a fresh object of `bytes`. */
  | { op: 'single'; bytes: number }
  /**
   * `nodes` tasks at once, task i needing resource `bcast<i>` (which one node offers), with one
   * fresh object of `bytes`. One shared resource ({bcast:1} on each node) does not spread them:
   * the head can place two on one node (see docs/benchmarks.md, "Issues found").
   */
  | { op: 'broadcast'; bytes: number; nodes: number };

/** Where a task ran (its worker's parent: the node daemon) and when it finished. */
export interface ProbeResult {
  ppid: number;
  /** ms from the submit to this task's result. */
  ms: number;
}

export type DriverReply =
  /** broadcastPpids: per round, where task i (resource `bcast<i>`) ran. */
  | { ok: true; op: 'warm'; singlePpids: number[]; broadcastPpids: number[] }
  | { ok: true; op: 'latency'; ms: number[] }
  | { ok: true; op: 'single' | 'broadcast'; ms: number; tasks: ProbeResult[] }
  | { ok: false; error: string };

const SMALL_BYTES = 1 << 20;

// Reads the length and the last element (the object's last page): enough to prove the whole
// object arrived (it is pulled into a segment before the task starts) without timing a scan.
const probe = (values: Float64Array) => ({ length: values.length, last: values[values.length - 1], ppid: process.ppid });
const onB = remote(probe, { resources: { gpu: 1 } });
const MAX_NODES = 8;
const onNode = Array.from({ length: MAX_NODES }, (_, i) => remote(probe, { resources: { [`bcast${i}`]: 1 } }));

/** A fresh sealed object of `bytes` on node A, every page written (as a real producer would). */
function fresh(bytes: number): ObjectRef<Float64Array> {
  const n = Math.floor(bytes / Float64Array.BYTES_PER_ELEMENT);
  const writer = store.create(Float64Array, n);
  writer.array.fill(1);
  writer.array[n - 1] = n - 1;
  return writer.seal();
}

/** Runs `runs` at once on `ref`; each result is checked and timed from the common submit. */
async function timed(ref: ObjectRef<Float64Array>, bytes: number, runs: readonly (typeof onB)[]): Promise<ProbeResult[]> {
  const n = Math.floor(bytes / Float64Array.BYTES_PER_ELEMENT);
  const started = performance.now();
  const tasks = await Promise.all(
    runs.map(async (run) => {
      const result = await run(ref);
      const ms = performance.now() - started;
      if (result.length !== n || result.last !== n - 1) {
        throw new Error(`a task read ${result.length} elements ending in ${result.last}, expected ${n} ending in ${n - 1}`);
      }
      return { ppid: result.ppid, ms };
    }),
  );
  return tasks;
}

async function handle(request: DriverRequest): Promise<DriverReply> {
  switch (request.op) {
    case 'warm': {
      const singlePpids: number[] = [];
      const broadcastPpids: number[] = [];
      for (let round = 0; round < request.rounds; round++) {
        const ref = fresh(SMALL_BYTES);
        singlePpids.push(...(await timed(ref, SMALL_BYTES, [onB])).map((task) => task.ppid));
        broadcastPpids.push(...(await timed(ref, SMALL_BYTES, onNode.slice(0, request.nodes))).map((task) => task.ppid));
        store.free(ref);
      }
      return { ok: true, op: 'warm', singlePpids, broadcastPpids };
    }
    case 'latency': {
      const ms: number[] = [];
      for (let round = 0; round < request.rounds; round++) {
        const ref = fresh(SMALL_BYTES);
        ms.push((await timed(ref, SMALL_BYTES, [onB]))[0]!.ms);
        store.free(ref);
      }
      return { ok: true, op: 'latency', ms };
    }
    case 'single':
    case 'broadcast': {
      if (request.op === 'broadcast' && request.nodes > MAX_NODES) throw new RangeError(`Expected at most ${MAX_NODES} nodes, got ${request.nodes}`);
      const ref = fresh(request.bytes);
      try {
        const tasks = await timed(ref, request.bytes, request.op === 'single' ? [onB] : onNode.slice(0, request.nodes));
        return { ok: true, op: request.op, ms: Math.max(...tasks.map((task) => task.ms)), tasks };
      } finally {
        store.free(ref);
      }
    }
  }
}

const [address] = process.argv.slice(2);
if (!address || !process.send) throw new Error('Usage: forked by cluster.ts with the head address: cluster-driver.js ws://HOST:PORT');
await init({ address });
process.on('message', (request: DriverRequest) => {
  handle(request).then(
    (reply) => process.send!(reply),
    (error: unknown) => process.send!({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies DriverReply),
  );
});
process.on('disconnect', () => void shutdown().finally(() => process.exit(0)));
process.send({ ready: true });
