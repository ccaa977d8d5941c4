// The head's handling of spilled tasks end to end, driven by fake nodes speaking the head protocol
// over real sockets: the decision reaches the right node with the right message, results and
// cancels are relayed, a dead node's tasks are placed again. The placement rules themselves are
// table-tested in packages/runtime/src/cluster/head/placement-policy.test.ts.
//
// Messages on two connections arrive in no guaranteed order, so before a message on one fake
// node's socket depends on something sent on another's, the test waits for the head's answer to
// the first (a `located`, a `view`, a `run`): the head has applied it by then.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterTask, FromHead } from '@shoal/protocol';
import { Head } from '@shoal/runtime/cluster';
import { dataUrlOf } from '../packages/runtime/src/cluster/head/head-fakes.test.js';
import { FAKE_TOKEN as TOKEN, FakeNode } from './head-fake-node.js';
const A = 'nodeAAAAAAAA';
const B = 'nodeBBBBBBBB';
const C = 'nodeCCCCCCCC';
const X = 'objectXXXXXXXXXXXXXXXX';
const dataUrl = dataUrlOf;

function task(returnId: string, resources: Record<string, number> = {}, args: ClusterTask['args'] = [], maxRetries = 1): ClusterTask {
  return {
    returnId,
    fn: { hash: 'h', name: 'work', source: '() => 1' },
    args,
    options: { numCpus: 1, resources, maxRetries, retryExceptions: false, timeoutMs: null },
  };
}

/** A ref argument to object X, owned by A, 50 MB. */
const onX = [{ ref: X, owner: A, size: 50_000_000 }];

function failure(message: Extract<FromHead, { type: 'result' }>): { code: string; message: string } {
  assert.ok(!message.result.ok, `${message.returnId} failed`);
  return message.result.failure;
}

test('a spilled task runs on the node holding its argument, which it fetches from the owner first', { timeout: 30_000 }, async () => {
  await using head = await Head.start({ port: 0, token: TOKEN });
  using a = await FakeNode.join(head.url, A, { CPU: 1 }, { CPU: 0 });
  using b = await FakeNode.join(head.url, B, { CPU: 1 });
  using c = await FakeNode.join(head.url, C, { CPU: 1 });

  await c.holds(X, 50_000_000);
  a.send({ type: 'spill', task: task('return1xxxxxxxxxxxxxxx', {}, onX) });
  const run = await c.next('run');
  assert.equal(run.task.returnId, 'return1xxxxxxxxxxxxxxx');
  assert.equal(run.origin, A);
  assert.equal(run.seq, 1, 'the first run sent to C');
  assert.deepEqual(run.sources[X], [dataUrl(A), dataUrl(C)]);
  assert.ok(!b.inbox.some((message) => message.type === 'run'), 'B, which has room but not the argument, runs nothing');
});

test('a node stays taken by the runs sent to it until a report accounts for them', { timeout: 30_000 }, async () => {
  await using head = await Head.start({ port: 0, token: TOKEN });
  using a = await FakeNode.join(head.url, A, { CPU: 1 }, { CPU: 0 });
  using b = await FakeNode.join(head.url, B, { CPU: 1 });

  a.send({ type: 'spill', task: task('return1xxxxxxxxxxxxxxx') });
  assert.equal((await b.next('run')).seq, 1);

  // No room elsewhere and A could run it: A keeps it.
  a.send({ type: 'spill', task: task('return2xxxxxxxxxxxxxxx') });
  assert.equal((await a.next('declined')).returnId, 'return2xxxxxxxxxxxxxxx');

  // B reports before it received that run: still full, as far as the head is concerned.
  await b.heartbeat(0);
  a.send({ type: 'spill', task: task('return3xxxxxxxxxxxxxxx') });
  assert.equal((await a.next('declined')).returnId, 'return3xxxxxxxxxxxxxxx');

  // Its next report has seen run 1 (and, as reported, a free CPU): it takes the next task.
  await b.heartbeat(1);
  a.send({ type: 'spill', task: task('return4xxxxxxxxxxxxxxx') });
  const run = await b.next('run');
  assert.equal(run.task.returnId, 'return4xxxxxxxxxxxxxxx');
  assert.equal(run.seq, 2);
});

test('a task only a busy node could run queues there; one no node could run is infeasible, saying what each offers', { timeout: 30_000 }, async () => {
  await using head = await Head.start({ port: 0, token: TOKEN });
  using a = await FakeNode.join(head.url, A, { CPU: 1 }, { CPU: 0 });
  using c = await FakeNode.join(head.url, C, { CPU: 1, gpu: 1 }, { CPU: 0, gpu: 1 });

  a.send({ type: 'spill', task: task('return1xxxxxxxxxxxxxxx', { gpu: 1 }) });
  assert.equal((await c.next('run')).task.returnId, 'return1xxxxxxxxxxxxxxx');

  a.send({ type: 'spill', task: task('return2xxxxxxxxxxxxxxx', { tpu: 1 }) });
  const refused = await a.next('result');
  assert.equal(refused.returnId, 'return2xxxxxxxxxxxxxxx');
  const { code, message } = failure(refused);
  assert.equal(code, 'ERR_TASK_INFEASIBLE');
  assert.match(message, /needs CPU 1, tpu 1.*test \(nodeAAAAAAAA\) offers CPU 1; test \(nodeCCCCCCCC\) offers CPU 1, gpu 1/);
});

test('the result of a forwarded task reaches its submitter with the holder; a cancel reaches the node running it', { timeout: 30_000 }, async () => {
  await using head = await Head.start({ port: 0, token: TOKEN });
  using a = await FakeNode.join(head.url, A, { CPU: 1 }, { CPU: 0 });
  using b = await FakeNode.join(head.url, B, { CPU: 2 });

  a.send({ type: 'spill', task: task('return1xxxxxxxxxxxxxxx') });
  await b.next('run');
  b.send({ type: 'result', origin: A, returnId: 'return1xxxxxxxxxxxxxxx', result: { ok: true, size: 3, bytes: new Uint8Array([1, 2, 3]), contains: [] } });
  const result = await a.next('result');
  assert.equal(result.returnId, 'return1xxxxxxxxxxxxxxx');
  assert.equal(result.holder, B);
  assert.equal(result.holderUrl, dataUrl(B));
  assert.ok(result.result.ok);

  a.send({ type: 'spill', task: task('return2xxxxxxxxxxxxxxx') });
  await b.next('run');
  a.send({ type: 'cancel', returnId: 'return2xxxxxxxxxxxxxxx' });
  assert.equal((await b.next('cancel')).returnId, 'return2xxxxxxxxxxxxxxx');
});

test("a dead node's tasks are placed again, or fail with ERR_NODE_DIED when out of retries or of nodes", { timeout: 30_000 }, async () => {
  await using head = await Head.start({ port: 0, token: TOKEN });
  using a = await FakeNode.join(head.url, A, { CPU: 1 }, { CPU: 0 });
  using b = await FakeNode.join(head.url, B, { CPU: 1 });
  using c = await FakeNode.join(head.url, C, { CPU: 3, gpu: 1 });

  // All three go to C: two for their argument, the third because only C has a gpu.
  await c.holds(X, 50_000_000);
  a.send({ type: 'spill', task: task('retriedxxxxxxxxxxxxxxx', {}, onX) });
  a.send({ type: 'spill', task: task('noRetriesxxxxxxxxxxxxx', {}, onX, 0) });
  a.send({ type: 'spill', task: task('gpuxxxxxxxxxxxxxxxxxxx', { gpu: 1 }) });
  for (let runs = 0; runs < 3; runs++) await c.next('run');

  c.socket.terminate();
  const again = await b.next('run');
  assert.equal(again.task.returnId, 'retriedxxxxxxxxxxxxxxx');
  assert.deepEqual(again.sources[X], [dataUrl(A)], "C's copy went with it");

  const outOfRetries = await a.next('result');
  assert.equal(outOfRetries.returnId, 'noRetriesxxxxxxxxxxxxx');
  assert.equal(failure(outOfRetries).code, 'ERR_NODE_DIED');
  assert.match(failure(outOfRetries).message, /left the cluster on each of 1 attempt\(s\)/);

  const outOfNodes = await a.next('result');
  assert.equal(outOfNodes.returnId, 'gpuxxxxxxxxxxxxxxxxxxx');
  assert.equal(failure(outOfNodes).code, 'ERR_NODE_DIED', 'its node died; it is not infeasible');
  assert.match(failure(outOfNodes).message, /no node there now offers CPU 1, gpu 1/);
});
