// Shoal's diagnostics_channel events, seen by a subscriber in the process that runs the nodes (an
// in-process cluster of two: the driver's node and a gpu node its task must run on).
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ObjectFreeMessage, ObjectPutMessage, ObjectTransferMessage, TaskEndMessage, TaskFailMessage, TaskStartMessage } from 'shoal';
import { runProgram } from './cluster-helpers.js';
import { until } from './runtime-helpers.js';
import { startCluster } from './support/start-cluster.js';

const DRIVER = fileURLToPath(new URL('./fixtures/diagnostics-driver.ts', import.meta.url));
const NAMES = ['shoal:task:start', 'shoal:task:finish', 'shoal:task:fail', 'shoal:object:put', 'shoal:object:free', 'shoal:object:transfer'] as const;

test('task and object events reach diagnostics_channel subscribers: start, finish, fail, put, transfer, free', { timeout: 120_000 }, async () => {
  const seen = new Map<string, unknown[]>(NAMES.map((name) => [name, []]));
  const listeners = NAMES.map((name) => [name, (message: unknown) => seen.get(name)!.push(message)] as const);
  for (const [name, listener] of listeners) subscribe(name, listener);
  try {
    await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
    const run = await runProgram(DRIVER, [cluster.nodes[0]!.address, 'shoal-test-child'], {});
    assert.equal(run.code, 0, run.stderr);
    const ids = JSON.parse(run.stdout) as { data: string; result: string; failed: string; first: number; error: string };
    assert.deepEqual({ first: ids.first, error: ids.error }, { first: 6, error: 'TaskError' });

    const put = seen.get('shoal:object:put') as ObjectPutMessage[];
    assert.ok(put.some((message) => message.id === ids.data && message.size >= 2 * 2 ** 20 && !message.inline), 'the array was put, as a segment');
    const transfers = seen.get('shoal:object:transfer') as ObjectTransferMessage[];
    const pulledArray = transfers.find((message) => message.id === ids.data);
    assert.ok(pulledArray, 'the gpu node pulled the array');
    assert.match(pulledArray.from, /^ws:\/\/127\.0\.0\.1:\d+/);
    assert.ok(pulledArray.size >= 2 * 2 ** 20 && pulledArray.durationMs >= 0);
    assert.ok(transfers.some((message) => message.id === ids.result), 'and the result came back');

    const starts = seen.get('shoal:task:start') as TaskStartMessage[];
    const started = starts.find((message) => message.returnId === ids.result);
    assert.ok(started, 'the gpu task started on a worker');
    assert.equal(started.attempt, 1);
    assert.ok(Number.isInteger(started.workerPid) && started.workerPid > 0);
    assert.ok((seen.get('shoal:task:finish') as TaskEndMessage[]).some((message) => message.returnId === ids.result), 'and finished');
    const failed = (seen.get('shoal:task:fail') as TaskFailMessage[]).find((message) => message.returnId === ids.failed);
    assert.ok(failed, 'the throwing task failed');
    assert.equal(failed.name, 'failsOnPurpose');
    assert.equal(failed.error.name, 'TaskError');
    await until(() => (seen.get('shoal:object:free') as ObjectFreeMessage[]).some((message) => message.id === ids.data), 'the array to be freed');
  } finally {
    for (const [name, listener] of listeners) unsubscribe(name, listener);
  }
});
