import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NodeReport } from '@shoal/protocol';
import type { Logger } from '../../log.js';
import { FakeLink, nodeReport } from './head-fakes.test.js';
import { Membership } from './membership.js';

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/** A report with two CPUs, all free, unless `fields` say otherwise. */
const report = (nodeId: string, fields: Partial<NodeReport> = {}): NodeReport => nodeReport(nodeId, { resources: { CPU: 2 }, available: { CPU: 2 }, ...fields });

/** A membership on a clock the test moves, recording who departed. */
function membership(heartbeatTimeoutMs = 5000) {
  const clock = { now: 1_000_000 };
  const departed: string[] = [];
  const members = new Membership({ heartbeatTimeoutMs, logger: quiet, departed: (nodeId) => departed.push(nodeId), now: () => clock.now });
  return { members, clock, departed };
}

test('the sweep removes and disconnects exactly the members silent for longer than the timeout', () => {
  const { members, clock, departed } = membership(5000);
  const a = new FakeLink();
  const b = new FakeLink();
  members.report(report('a'), a);
  clock.now += 3000;
  members.report(report('b'), b);
  clock.now += 2000;
  members.sweep();
  assert.deepEqual(departed, [], 'a was heard from 5000 ms ago: not longer than the timeout');

  clock.now += 1;
  members.sweep();
  assert.deepEqual(departed, ['a']);
  assert.equal(a.open, false, "a's connection is dropped");
  assert.equal(b.open, true);
  assert.equal(members.has('a'), false);
  assert.deepEqual(
    members.nodes().map((node) => node.nodeId),
    ['b'],
  );
});

test('a heartbeat keeps a member in', () => {
  const { members, clock, departed } = membership(5000);
  const link = new FakeLink();
  members.report(report('a'), link);
  for (let beat = 0; beat < 5; beat++) {
    clock.now += 4000;
    members.report(report('a'), link);
    members.sweep();
  }
  assert.deepEqual(departed, []);
  clock.now += 1234;
  assert.equal(members.nodes()[0]?.lastSeenMs, 1234);
});

test('a closed connection makes its member leave, unless the member already reconnected on another', () => {
  const { members, departed } = membership();
  const first = new FakeLink();
  const second = new FakeLink();
  members.report(report('a'), first);
  members.report(report('a'), second);
  members.leave('a', first, 'disconnected');
  assert.deepEqual(departed, [], 'the old connection closing does not remove the node');
  members.leave('a', second, 'disconnected');
  assert.deepEqual(departed, ['a']);
  members.leave('a', second, 'disconnected');
  assert.deepEqual(departed, ['a'], 'once');
});

test('runs are numbered per member and take room until a report has seen them', () => {
  const { members } = membership();
  members.report(report('a'), new FakeLink());
  members.report(report('b', { resources: { CPU: 4 }, available: { CPU: 4 } }), new FakeLink());
  assert.equal(members.recordRun('b', { CPU: 1 }), 1);
  assert.equal(members.recordRun('b', { CPU: 1 }), 2);
  assert.equal(members.recordRun('a', { CPU: 1 }), 1, "a's runs are numbered apart");
  const room = () => members.viewFor('a').find((peer) => peer.nodeId === 'b')?.available;
  assert.deepEqual(room(), { CPU: 2 });

  // Run 2 had not arrived when b reported: it still counts.
  members.report(report('b', { resources: { CPU: 4 }, available: { CPU: 3 }, runsSeen: 1 }), new FakeLink());
  assert.deepEqual(room(), { CPU: 2 });
  assert.equal(members.snapshot().find((member) => member.nodeId === 'b')?.sentSinceReport.length, 1);

  members.report(report('b', { resources: { CPU: 4 }, available: { CPU: 2 }, runsSeen: 2 }), new FakeLink());
  assert.deepEqual(room(), { CPU: 2 });
  assert.equal(members.recordRun('b', { CPU: 1 }), 3, 'numbering goes on across reports');
});

test("a member's view lists the others, not itself", () => {
  const { members } = membership();
  members.report(report('a'), new FakeLink());
  members.report(report('b'), new FakeLink());
  members.report(report('c'), new FakeLink());
  assert.deepEqual(
    members.viewFor('b').map((peer) => [peer.nodeId, peer.dataUrl]),
    [
      ['a', 'ws://127.0.0.1:1/a'],
      ['c', 'ws://127.0.0.1:1/c'],
    ],
  );
});

test('sending reaches a member through its current connection, and fails for others', () => {
  const { members } = membership();
  const link = new FakeLink();
  members.report(report('a'), link);
  assert.equal(members.send('a', { type: 'declined', returnId: 'r' }), true);
  assert.deepEqual(link.sent, [{ type: 'declined', returnId: 'r' }]);
  assert.equal(members.send('nobody', { type: 'declined', returnId: 'r' }), false);
  link.open = false;
  assert.equal(members.send('a', { type: 'declined', returnId: 'r' }), false);
  assert.deepEqual(members.dataUrls(['a', 'nobody']), ['ws://127.0.0.1:1/a']);
});
