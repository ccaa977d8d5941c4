import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WorkerState } from '../worker-slot.js';
import { extraWorker } from './extra-worker.js';

test('extraWorker: up to maxWorkers freely, past it only while every worker is blocked, never past the hard cap', () => {
  const worker = (state: WorkerState, blockedRequests = 0, pausedStreams = 0) => ({ state, blockedRequests, pausedStreams });
  const limits = { maxWorkers: 2, maxBlockedWorkers: 3 };
  const rows: [string, ReturnType<typeof worker>[], ReturnType<typeof extraWorker>][] = [
    ['below maxWorkers', [worker('busy')], 'spawn'],
    ['one is starting already', [worker('starting'), worker('busy', 1)], 'wait'],
    ['at maxWorkers, one makes progress', [worker('busy', 1), worker('busy')], 'wait'],
    ['at maxWorkers, all blocked', [worker('busy', 1), worker('busy', 2)], 'spawn'],
    ['dead ones do not count', [worker('busy', 1), worker('busy', 1), worker('dead')], 'spawn'],
    ['at the hard cap, all blocked', [worker('busy', 1), worker('busy', 1), worker('busy', 1)], 'over-cap'],
    ['at the hard cap, one makes progress', [worker('busy', 1), worker('busy', 1), worker('busy')], 'wait'],
    // A streaming task paused for its consumer is not blocked: it never takes the node past maxWorkers.
    ['at maxWorkers, one only paused for its consumer', [worker('busy', 1), worker('busy', 1, 1)], 'wait'],
    ['at maxWorkers, one paused and waiting on an object too', [worker('busy', 1), worker('busy', 2, 1)], 'spawn'],
    ['at the hard cap, every one paused', [worker('busy', 1, 1), worker('busy', 1, 1), worker('busy', 1, 1)], 'wait'],
  ];
  for (const [what, workers, expected] of rows) assert.equal(extraWorker(workers, limits), expected, what);
  assert.equal(extraWorker([], { maxWorkers: 0, maxBlockedWorkers: 0 }), 'wait', 'a node with no workers fails nothing');
});
