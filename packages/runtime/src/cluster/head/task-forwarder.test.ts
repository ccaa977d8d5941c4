import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import type { ClusterArg, ClusterTask } from '@shoal/protocol';
import type { Logger } from '../../log.js';
import { FakeLink, dataUrlOf, nodeReport } from './head-fakes.test.js';
import { Membership } from './membership.js';
import { ObjectDirectory } from './object-directory.js';
import { TaskForwarder } from './task-forwarder.js';

const url = dataUrlOf;

/** Members a (no room), b and c (room) and the forwarder over them; `warnings` records the log. */
function cluster(resources: Record<string, Record<string, number>> = {}) {
  const warnings: string[] = [];
  const logger: Logger = { info: () => {}, warn: (_fields, message) => warnings.push(message), error: () => {} };
  const links = new Map<string, FakeLink>();
  const membership = new Membership({ heartbeatTimeoutMs: 5000, logger, departed: (nodeId) => forwarder.departed(nodeId) });
  const directory = new ObjectDirectory();
  const forwarder = new TaskForwarder(membership, directory, logger);
  const join = (nodeId: string, total: Record<string, number>, available = total) => {
    const link = new FakeLink();
    links.set(nodeId, link);
    membership.report(nodeReport(nodeId, { resources: total, available }), link);
  };
  join('a', { CPU: 1 }, { CPU: 0 });
  join('b', resources.b ?? { CPU: 1 });
  join('c', resources.c ?? { CPU: 1 });
  const link = (nodeId: string) => links.get(nodeId)!;
  const leave = (nodeId: string) => membership.leave(nodeId, link(nodeId), 'disconnected');
  return { membership, directory, forwarder, link, leave, warnings };
}

function task(returnId: string, args: ClusterArg[] = [], options: { resources?: Record<string, number>; maxRetries?: number } = {}): ClusterTask {
  return {
    returnId,
    fn: { hash: 'h', name: 'work', source: '() => 1' },
    args,
    options: { numCpus: 1, resources: options.resources ?? {}, maxRetries: options.maxRetries ?? 1, retryExceptions: false, timeoutMs: null },
  };
}

test('a placed task is sent as a run numbered for its node, with the sources of each fetched argument', () => {
  const { directory, forwarder, link } = cluster();
  directory.record('c', [['x', 100], ['y', 100]], []);
  directory.record('b', [['y', 100]], []);
  const args: ClusterArg[] = [
    { ref: 'x', owner: 'a', size: 100 },
    { ref: 'y', owner: 'c', size: 100 },
    { ref: 'small', owner: 'a', size: 3, bytes: new Uint8Array(3) },
    { value: new Uint8Array(1) },
  ];
  forwarder.spilled('a', task('r1', args));
  const [run] = link('c').take();
  assert.ok(run?.type === 'run');
  assert.equal(run.seq, 1);
  assert.equal(run.origin, 'a');
  assert.deepEqual(run.sources, {
    x: [url('a'), url('c')], // the owner first, then the holders
    y: [url('c'), url('b')], // the owner is a holder already: listed once
  });
  assert.equal(forwarder.size, 1);
});

test('a declined task and an infeasible one are answered to their submitter, and not kept', () => {
  const { forwarder, link } = cluster({ b: { CPU: 1 }, c: { CPU: 1 } });
  forwarder.spilled('a', task('r1'));
  forwarder.spilled('a', task('r2'));
  forwarder.spilled('a', task('r3'));
  forwarder.spilled('a', task('r4', [], { resources: { tpu: 1 } }));
  const [declined, refused] = link('a').take();
  assert.deepEqual(declined, { type: 'declined', returnId: 'r3' });
  assert.ok(refused?.type === 'result' && !refused.result.ok);
  assert.equal(refused.returnId, 'r4');
  assert.equal(refused.result.failure.code, 'ERR_TASK_INFEASIBLE');
  assert.equal(forwarder.size, 2, 'r1 and r2 are out on b and c');
});

test("a result goes to the submitter with its holder's address; one from another node is ignored", () => {
  const { forwarder, link } = cluster();
  forwarder.spilled('a', task('r1'));
  const result = { ok: true, size: 3, contains: [] } as const;
  forwarder.finished('c', 'r1', result);
  assert.deepEqual(link('a').take(), [], 'c was not running r1');
  forwarder.finished('b', 'r1', result);
  assert.deepEqual(link('a').take(), [{ type: 'result', returnId: 'r1', holder: 'b', holderUrl: url('b'), result }]);
  forwarder.finished('b', 'r1', result);
  assert.deepEqual(link('a').take(), [], 'once');
  assert.equal(forwarder.size, 0);
});

test('a result nobody will pull is cancelled on the node that holds it', () => {
  const { forwarder, link } = cluster();
  forwarder.spilled('a', task('r1'));
  link('a').open = false;
  forwarder.finished('b', 'r1', { ok: true, size: 3, contains: [] });
  assert.deepEqual(link('b').take().at(-1), { type: 'cancel', returnId: 'r1' });
});

test('only the submitter cancels a task; the node running it is told', () => {
  const { forwarder, link } = cluster();
  forwarder.spilled('a', task('r1'));
  link('b').take();
  forwarder.cancelled('c', 'r1');
  assert.deepEqual(link('b').take(), []);
  forwarder.cancelled('a', 'r1');
  assert.deepEqual(link('b').take(), [{ type: 'cancel', returnId: 'r1' }]);
  assert.equal(forwarder.size, 0);
});

test('a submitter that left has its tasks cancelled where they run', () => {
  const { forwarder, link, leave } = cluster();
  forwarder.spilled('a', task('r1'));
  link('b').take();
  leave('a');
  assert.deepEqual(link('b').take(), [{ type: 'cancel', returnId: 'r1' }]);
  assert.equal(forwarder.size, 0);
});

test('tasks of a node that died are placed again while retries last, then fail with ERR_NODE_DIED', () => {
  const { forwarder, link, leave, warnings } = cluster({ b: { CPU: 2 }, c: { CPU: 1 } });
  forwarder.spilled('a', task('once', [], { maxRetries: 1 }));
  forwarder.spilled('a', task('never', [], { maxRetries: 0 }));
  assert.deepEqual(
    link('b').take().map((message) => message.type === 'run' && message.task.returnId),
    ['once', 'never'],
  );

  leave('b');
  const [again] = link('c').take();
  assert.ok(again?.type === 'run' && again.task.returnId === 'once');
  assert.deepEqual(warnings, ['task work was running on b: placing it again (attempt 2)']);
  const [lost] = link('a').take();
  assert.ok(lost?.type === 'result' && !lost.result.ok && lost.returnId === 'never');
  assert.equal(lost.result.failure.code, 'ERR_NODE_DIED');
  assert.match(lost.result.failure.message, /on each of 1 attempt\(s\)/);

  // Its second node dies too: out of retries.
  leave('c');
  const [lostAgain] = link('a').take();
  assert.ok(lostAgain?.type === 'result' && !lostAgain.result.ok && lostAgain.returnId === 'once');
  assert.match(lostAgain.result.failure.message, /on each of 2 attempt\(s\)/);
  assert.equal(forwarder.size, 0);
});

test('a task placed again with no other node able to run it fails as a death, not as infeasible', () => {
  const { forwarder, link, leave } = cluster({ b: { CPU: 1, gpu: 1 } });
  forwarder.spilled('a', task('r1', [], { resources: { gpu: 1 } }));
  leave('b');
  const [lost] = link('a').take();
  assert.ok(lost?.type === 'result' && !lost.result.ok);
  assert.equal(lost.result.failure.code, 'ERR_NODE_DIED');
  assert.match(lost.result.failure.message, /no node there now offers CPU 1, gpu 1/);
});

test('a run its only able node is slow to acknowledge is neither failed nor cancelled; it completes once acknowledged', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { forwarder, link, warnings } = cluster({ b: { CPU: 1, gpu: 1 } });
    forwarder.spilled('a', task('r1', [], { resources: { gpu: 1 } }));
    const [run] = link('b').take();
    assert.ok(run?.type === 'run');
    // Two ack timeouts pass: no other node has a gpu, so the head keeps waiting for b.
    mock.timers.tick(5000);
    mock.timers.tick(5000);
    assert.deepEqual(link('a').take(), [], 'the submitter got no failure');
    assert.deepEqual(link('b').take(), [], 'b was not told to drop it');
    assert.deepEqual(warnings, ['node b did not acknowledge task work within 5000 ms, and no other node can run it: still waiting for it']);

    forwarder.accepted('b', 'r1', run.seq);
    assert.deepEqual(link('b').take(), [], 'its late ack is taken');
    forwarder.finished('b', 'r1', { ok: true, size: 1, contains: [] });
    const [result] = link('a').take();
    assert.ok(result?.type === 'result' && result.returnId === 'r1' && result.holder === 'b');
    assert.equal(forwarder.size, 0);
  } finally {
    mock.timers.reset();
  }
});

test('a run not acknowledged in time goes to another able node, and only then is the first told to drop it', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { forwarder, link } = cluster({ b: { CPU: 2 }, c: { CPU: 1 } });
    forwarder.spilled('a', task('r1'));
    assert.equal(link('b').take()[0]?.type, 'run');
    mock.timers.tick(5000);
    assert.deepEqual(link('b').take(), [{ type: 'cancel', returnId: 'r1' }]);
    const [again] = link('c').take();
    assert.ok(again?.type === 'run' && again.task.returnId === 'r1');
  } finally {
    mock.timers.reset();
  }
});
