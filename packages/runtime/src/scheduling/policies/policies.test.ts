import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Task } from '../task.js';
import type { WorkerSlot } from '../worker-slot.js';
import { place } from './local-fit.js';
import { firstStartable } from './lookahead.js';
import { DEEP_BACKLOG, DEEP_PIPELINE_DEPTH, PIPELINE_DEPTH, pipelineDepth, pipelineTarget } from './pipeline.js';
import { stealFrom } from './steal.js';

describe('place (local fit)', () => {
  const rows: [string, Record<string, number>, Record<string, number>, Record<string, number>, 'placed' | 'wait' | 'infeasible'][] = [
    ['fits in what is free', { CPU: 1 }, { CPU: 2 }, { CPU: 2 }, 'placed'],
    ['all of it', { CPU: 2 }, { CPU: 2 }, { CPU: 2 }, 'placed'],
    ['busy now, fits later', { CPU: 2 }, { CPU: 1 }, { CPU: 2 }, 'wait'],
    ['more than the node has', { CPU: 3 }, { CPU: 3 }, { CPU: 2 }, 'infeasible'],
    ['ten tenths make a CPU despite rounding', { CPU: 0.1 * 3 }, { CPU: 1 - 0.7 }, { CPU: 1 }, 'placed'],
    ['custom resource offered', { CPU: 1, gpu: 1 }, { CPU: 1, gpu: 1 }, { CPU: 1, gpu: 1 }, 'placed'],
    ['custom resource in use', { CPU: 1, gpu: 1 }, { CPU: 1, gpu: 0 }, { CPU: 1, gpu: 1 }, 'wait'],
    ['custom resource missing', { CPU: 1, gpu: 1 }, { CPU: 1 }, { CPU: 1 }, 'infeasible'],
    ['zero of a missing resource asks for nothing', { CPU: 1, gpu: 0 }, { CPU: 1 }, { CPU: 1 }, 'placed'],
    ['negative availability (CPU lent) waits', { CPU: 1 }, { CPU: -1 }, { CPU: 2 }, 'wait'],
    ['zero CPUs run even when none is free', { CPU: 0 }, { CPU: 0 }, { CPU: 1 }, 'placed'],
  ];
  for (const [name, demand, available, total, kind] of rows) {
    test(name, () => assert.equal(place(demand, available, total).kind, kind));
  }

  test('an infeasible placement says what is needed and what is offered', () => {
    assert.deepEqual(place({ CPU: 4 }, { CPU: 2 }, { CPU: 2 }), { kind: 'infeasible', reason: 'it needs 4 CPUs, and this node offers 2' });
    assert.deepEqual(place({ CPU: 1, gpu: 2 }, { CPU: 1 }, { CPU: 1, gpu: 1 }), {
      kind: 'infeasible',
      reason: 'it needs 2 of resource "gpu", and this node offers 1',
    });
  });
});

describe('firstStartable (lookahead)', () => {
  const rows: [string, boolean[], number, number][] = [
    ['the head starts', [true, false], 64, 0],
    ['a small task behind a big head starts', [false, false, true], 64, 2],
    ['nothing startable', [false, false], 64, -1],
    ['not past the limit', [false, false, true], 2, -1],
    ['empty queue', [], 64, -1],
  ];
  for (const [name, startable, limit, expected] of rows) {
    test(name, () => assert.equal(firstStartable(startable.length, (i) => startable[i]!, (ok) => ok, limit), expected));
  }
});

type FakeWorker = Pick<WorkerSlot, 'state' | 'blockedRequests' | 'inflight' | 'lease'> & { name: string };

function worker(name: string, fields: Partial<FakeWorker> & { queued?: number; running?: boolean }): FakeWorker {
  const inflight: Task[] = [];
  if (fields.running !== false && fields.state !== 'idle') inflight.push({ state: 'running', recalling: false } as Task);
  for (let i = 0; i < (fields.queued ?? 0); i++) inflight.push({ state: 'queued', recalling: false, id: i } as Task);
  return { name, state: fields.state ?? 'busy', blockedRequests: fields.blockedRequests ?? 0, lease: fields.lease ?? { CPU: 1 }, inflight };
}

describe('pipelineTarget', () => {
  const task = { demand: { CPU: 1 }, options: { timeoutMs: null } };
  const rows: [string, typeof task, FakeWorker[], string | undefined][] = [
    ['the least loaded busy worker', task, [worker('a', { queued: 3 }), worker('b', { queued: 1 })], 'b'],
    ['not an idle one', task, [worker('a', { state: 'idle', lease: undefined })], undefined],
    ['not one waiting on objects', task, [worker('a', { blockedRequests: 1 }), worker('b', { queued: 5 })], 'b'],
    ['not one with another demand', task, [worker('a', { lease: { CPU: 2 } })], undefined],
    ['not one with a custom resource the task lacks', task, [worker('a', { lease: { CPU: 1, gpu: 1 } })], undefined],
    ['not a full queue', task, [worker('a', { queued: PIPELINE_DEPTH - 1 })], undefined],
    ['never a task with a timeout', { demand: { CPU: 1 }, options: { timeoutMs: 100 } } as unknown as typeof task, [worker('a', {})], undefined],
  ];
  for (const [name, t, workers, expected] of rows) {
    test(name, () => assert.equal(pipelineTarget(t, workers)?.name, expected));
  }
});

describe('pipelineDepth', () => {
  const task = { demand: { CPU: 1 }, options: { timeoutMs: null } };
  test('a worker queue is PIPELINE_DEPTH long below a deep backlog, DEEP_PIPELINE_DEPTH from it', () => {
    assert.equal(pipelineDepth(0), PIPELINE_DEPTH);
    assert.equal(pipelineDepth(DEEP_BACKLOG - 1), PIPELINE_DEPTH);
    assert.equal(pipelineDepth(DEEP_BACKLOG), DEEP_PIPELINE_DEPTH);
    const full = [worker('a', { queued: PIPELINE_DEPTH - 1 })];
    assert.equal(pipelineTarget(task, full, pipelineDepth(10)), undefined);
    assert.equal(pipelineTarget(task, full, pipelineDepth(DEEP_BACKLOG))?.name, 'a');
    assert.equal(pipelineTarget(task, [worker('a', { queued: DEEP_PIPELINE_DEPTH - 1 })], pipelineDepth(DEEP_BACKLOG)), undefined);
  });
});

describe('stealFrom', () => {
  test('half of the longest queue, rounded up, from its end', () => {
    const a = worker('a', { queued: 1 });
    const b = worker('b', { queued: 3 });
    const steal = stealFrom([a, b]);
    assert.equal(steal?.worker, b);
    assert.deepEqual(
      steal?.tasks.map((task) => task.id),
      [1, 2],
    );
  });

  test('tasks already being recalled are not taken twice', () => {
    const a = worker('a', { queued: 2 });
    a.inflight[1]!.recalling = true;
    assert.deepEqual(
      stealFrom([a])?.tasks.map((task) => task.id),
      [1],
    );
  });

  test('nothing queued anywhere: nothing to steal', () => {
    assert.equal(stealFrom([worker('a', {}), worker('b', { state: 'idle' })]), undefined);
  });
});
