// The head's placement of spilled tasks, driven by fake nodes speaking the head protocol: room
// first, then the node holding most of the task's argument bytes; no room anywhere sends the task
// back to its submitter (declined) or to any node that could ever run it; nothing feasible is an
// InfeasibleTaskError; a dead target means placing the task again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { decodeFromHead, decodeMessage, encodeMessage, type ClusterTask, type FromHead, type NodeReport, type ToHead } from '@shoal/protocol';
import { Head } from '@shoal/runtime';

const TOKEN = 'placement-test-token';

class FakeNode {
  readonly inbox: FromHead[] = [];
  readonly #waiters: (() => void)[] = [];
  constructor(
    readonly socket: WebSocket,
    readonly report: NodeReport,
  ) {
    socket.on('message', (data: Buffer) => {
      this.inbox.push(decodeFromHead(decodeMessage(data)));
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  static async join(url: string, nodeId: string, resources: Record<string, number>, available = resources): Promise<FakeNode> {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    await new Promise((resolve) => socket.once('open', resolve));
    const report: NodeReport = {
      nodeId,
      hostname: 'test',
      pid: 1,
      address: `unix:/nowhere/${nodeId}`,
      dataUrl: `ws://127.0.0.1:1/${nodeId}`,
      resources,
      available,
      objects: 0,
      objectBytes: 0,
      capacityBytes: 0,
      queuedTasks: 0,
      runningTasks: 0,
      workers: 1,
      pulls: 0,
      pulledBytes: 0,
      runsSeen: 0,
    };
    const node = new FakeNode(socket, report);
    node.send({ type: 'hello', token: TOKEN, role: 'node' });
    node.send({ type: 'register', node: report });
    await node.next('registered');
    return node;
  }

  send(message: ToHead): void {
    this.socket.send(encodeMessage(message));
  }

  /** The next message of `type` (waiting up to 10 s for it). */
  async next<T extends FromHead['type']>(type: T): Promise<Extract<FromHead, { type: T }>> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const index = this.inbox.findIndex((message) => message.type === type);
      if (index >= 0) return this.inbox.splice(index, 1)[0] as Extract<FromHead, { type: T }>;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.report.nodeId} got no ${type}; it has ${JSON.stringify(this.inbox.map((m) => m.type))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

function task(returnId: string, resources: Record<string, number> = {}, args: ClusterTask['args'] = []): ClusterTask {
  return {
    returnId,
    fn: { hash: 'h', name: 'work', source: '() => 1' },
    args,
    options: { numCpus: 1, resources, maxRetries: 1, retryExceptions: false, timeoutMs: null },
  };
}

test('the head places spilled tasks by room, then argument bytes; declines, falls back, refuses, re-places', { timeout: 30_000 }, async () => {
  const head = await Head.start({ port: 0, token: TOKEN, log: () => {} });
  const nodes: FakeNode[] = [];
  try {
    const a = await FakeNode.join(head.url, 'nodeAAAAAAAA', { CPU: 1 }, { CPU: 0 });
    const b = await FakeNode.join(head.url, 'nodeBBBBBBBB', { CPU: 1 });
    const c = await FakeNode.join(head.url, 'nodeCCCCCCCC', { CPU: 1, gpu: 1 });
    nodes.push(a, b, c);

    // C holds a big object: a task on it goes to C, though B has room too.
    c.send({ type: 'objects', added: [['objectXXXXXXXXXXXXXXXX', 50_000_000]], removed: [] });
    a.send({ type: 'spill', task: task('return1xxxxxxxxxxxxxxx', {}, [{ ref: 'objectXXXXXXXXXXXXXXXX', owner: 'nodeAAAAAAAA', size: 50_000_000 }]) });
    const run = await c.next('run');
    assert.equal(run.task.returnId, 'return1xxxxxxxxxxxxxxx');
    assert.equal(run.origin, 'nodeAAAAAAAA');
    assert.deepEqual(run.sources.objectXXXXXXXXXXXXXXXX, ['ws://127.0.0.1:1/nodeAAAAAAAA', 'ws://127.0.0.1:1/nodeCCCCCCCC']);

    // C is now taken (until its next report); a task with no arguments goes to B.
    a.send({ type: 'spill', task: task('return2xxxxxxxxxxxxxxx') });
    assert.equal((await b.next('run')).task.returnId, 'return2xxxxxxxxxxxxxxx');

    // B reports before it received that run: still full, as far as the head is concerned.
    b.send({ type: 'heartbeat', node: { ...b.report, runsSeen: 0 } });
    await b.next('view');

    // No room left anywhere, and A could run it: A keeps it.
    a.send({ type: 'spill', task: task('return3xxxxxxxxxxxxxxx') });
    assert.equal((await a.next('declined')).returnId, 'return3xxxxxxxxxxxxxxx');

    // A gpu task while C is busy: only C could ever run it, so it queues there.
    a.send({ type: 'spill', task: task('return4xxxxxxxxxxxxxxx', { gpu: 1 }) });
    assert.equal((await c.next('run')).task.returnId, 'return4xxxxxxxxxxxxxxx');

    // Nobody offers a tpu: infeasible, saying what each node offers.
    a.send({ type: 'spill', task: task('return5xxxxxxxxxxxxxxx', { tpu: 1 }) });
    const refused = await a.next('result');
    assert.equal(refused.returnId, 'return5xxxxxxxxxxxxxxx');
    assert.ok(!refused.result.ok && refused.result.failure.code === 'ERR_TASK_INFEASIBLE');
    assert.match(refused.result.ok ? '' : refused.result.failure.message, /tpu 1[\s\S]*CPU 1, gpu 1/);

    // A result from B reaches the submitter with B's data address.
    b.send({ type: 'result', origin: 'nodeAAAAAAAA', returnId: 'return2xxxxxxxxxxxxxxx', result: { ok: true, size: 3, bytes: new Uint8Array([1, 2, 3]), contains: [] } });
    const result = await a.next('result');
    assert.equal(result.holderUrl, 'ws://127.0.0.1:1/nodeBBBBBBBB');

    // C dies with two tasks. No node has room (B is taken): the one A could run goes back to
    // A; the gpu one has nowhere to go.
    c.socket.terminate();
    assert.equal((await a.next('declined')).returnId, 'return1xxxxxxxxxxxxxxx');
    const lost = await a.next('result');
    assert.equal(lost.returnId, 'return4xxxxxxxxxxxxxxx');
    assert.ok(!lost.result.ok && lost.result.failure.code === 'ERR_NODE_DIED', 'its node died; it is not infeasible');
  } finally {
    for (const node of nodes) node.socket.terminate();
    await head.close();
  }
});
