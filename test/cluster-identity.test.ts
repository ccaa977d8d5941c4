// A node id is bound to the connection that registered it, and a run a node never acknowledges is
// placed again: driven by fake nodes speaking the head protocol over real sockets (head-fake-node.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterTask } from '@shoal/protocol';
import { CLOSE_PROTOCOL_ERROR } from '@shoal/protocol';
import { Head } from '@shoal/runtime/cluster';
import { FAKE_TOKEN as TOKEN, FakeNode } from './head-fake-node.js';

const A = 'nodeAAAAAAAA';
const B = 'nodeBBBBBBBB';
const C = 'nodeCCCCCCCC';

function task(returnId: string): ClusterTask {
  return {
    returnId,
    fn: { hash: 'h', name: 'work', source: '() => 1' },
    args: [],
    options: { numCpus: 1, resources: {}, maxRetries: 1, retryExceptions: false, timeoutMs: null },
  };
}

test("a token holder registering with a live node's id is refused and gets none of its tasks", { timeout: 30_000 }, async () => {
  await using head = await Head.start({ port: 0, token: TOKEN });
  using a = await FakeNode.join(head.url, A, { CPU: 1 }, { CPU: 0 });
  using b = await FakeNode.join(head.url, B, { CPU: 1 });

  using impostor = await FakeNode.connect(head.url, B, { CPU: 8 });
  impostor.send({ type: 'register', node: impostor.report });
  const { code, reason } = await impostor.closed;
  assert.equal(code, CLOSE_PROTOCOL_ERROR);
  assert.match(reason, /that node id is taken by a live connection/);

  a.send({ type: 'spill', task: task('spilledxxxxxxxxxxxxxxx') });
  assert.equal((await b.next('run')).task.returnId, 'spilledxxxxxxxxxxxxxxx', 'the real B still gets its tasks');
  assert.ok(!impostor.inbox.some((message) => message.type === 'registered' || message.type === 'run'));
  assert.equal(head.nodes().find((node) => node.nodeId === B)?.resources.CPU, 1, "the impostor's report was not taken");

  // Once the real B's connection is gone, B may register again (a node that reconnects).
  b.socket.terminate();
  await b.closed;
  using again = await FakeNode.join(head.url, B, { CPU: 1 });
  assert.ok(head.nodes().some((node) => node.nodeId === again.report.nodeId));
});

test('registering the longest id twice is refused with a short reason, and the head lives on', { timeout: 30_000 }, async () => {
  // A reason naming a 64-character id passed the 123 bytes a close frame holds: ws threw, and the
  // daemon died of it.
  const long = 'L'.repeat(64);
  await using head = await Head.start({ port: 0, token: TOKEN });
  using first = await FakeNode.join(head.url, long, { CPU: 1 });
  using second = await FakeNode.connect(head.url, long, { CPU: 1 });
  second.send({ type: 'register', node: second.report });
  const { code, reason } = await second.closed;
  assert.equal(code, CLOSE_PROTOCOL_ERROR);
  assert.ok(Buffer.byteLength(reason) <= 123);
  using _other = await FakeNode.join(head.url, B, { CPU: 1 });
  assert.deepEqual(head.nodes().map((node) => node.nodeId).sort(), [B, long].sort(), 'the head still takes nodes');
  assert.equal(first.socket.readyState, first.socket.OPEN, 'the first holder of the id is still connected');
});

test('a run a node never acknowledges is placed again elsewhere; its late ack is answered with a cancel', { timeout: 30_000 }, async () => {
  await using head = await Head.start({ port: 0, token: TOKEN, runAckTimeoutMs: 300 });
  using a = await FakeNode.join(head.url, A, { CPU: 1 }, { CPU: 0 });
  // B joins first, so of equally free nodes it is chosen; it swallows the run.
  using b = await FakeNode.join(head.url, B, { CPU: 2 });
  using c = await FakeNode.join(head.url, C, { CPU: 1 });

  a.send({ type: 'spill', task: task('swallowedxxxxxxxxxxxxx') });
  const swallowed = await b.next('run');
  assert.equal(swallowed.task.returnId, 'swallowedxxxxxxxxxxxxx');

  const again = await c.next('run');
  assert.equal(again.task.returnId, 'swallowedxxxxxxxxxxxxx', 'placed again on C after B did not acknowledge it');
  assert.equal((await b.next('cancel')).returnId, 'swallowedxxxxxxxxxxxxx', 'B is told to drop it');
  c.send({ type: 'accepted', seq: again.seq, returnId: again.task.returnId });

  // B wakes up: its late ack and result are refused, so the task cannot run (or finish) twice.
  b.send({ type: 'accepted', seq: swallowed.seq, returnId: swallowed.task.returnId });
  assert.equal((await b.next('cancel')).returnId, 'swallowedxxxxxxxxxxxxx');
  b.send({ type: 'result', origin: A, returnId: 'swallowedxxxxxxxxxxxxx', result: { ok: true, size: 1, bytes: Buffer.from([1]), contains: [] } });
  c.send({ type: 'result', origin: A, returnId: 'swallowedxxxxxxxxxxxxx', result: { ok: true, size: 1, bytes: Buffer.from([2]), contains: [] } });
  const result = await a.next('result');
  assert.equal(result.holder, C, "the submitter gets C's result, not B's");
  assert.ok(!a.inbox.some((message) => message.type === 'result'), 'exactly one result');
});
