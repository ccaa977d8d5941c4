import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterTask } from '@shoal/protocol';
import { ClusterPort } from './cluster-port.js';

const task: ClusterTask = {
  returnId: 'r1',
  fn: { hash: 'h', name: 'work', source: '() => 1' },
  args: [],
  options: { numCpus: 1, resources: {}, maxRetries: 1, retryExceptions: false, timeoutMs: null },
};

test('a node that no longer accepts tasks neither takes nor acknowledges a run the head sent it', () => {
  // The store, scheduler and objects are never reached when the run is refused.
  const port = new ClusterPort({ store: {} as never, scheduler: {} as never, objects: {} as never, actors: {} as never, output: {} as never }, () => false);
  let acknowledged = false;
  const taken = port.runForeign('a', task, () => assert.fail('nothing is fetched'), () => (acknowledged = true));
  assert.equal(taken, false);
  assert.equal(acknowledged, false, 'the head, hearing no ack, places it again');
});
