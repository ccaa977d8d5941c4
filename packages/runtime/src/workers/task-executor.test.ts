import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import { decodeThrown, decodeValue, encodeValue, writeInline, type WorkerToNode } from '@shoal/protocol';
import { RemoteObjects } from '../client/object-io.js';
import { TaskExecutor, type TaskMessage } from './task-executor.js';

// Objects as bytes: every result is inline, so the executor runs with no node and no segment.
function executor() {
  const sent: WorkerToNode[] = [];
  const tasks = new TaskExecutor({ connection: { send: (message) => sent.push(message) }, objects: new RemoteObjects(() => true) });
  return { tasks, sent };
}

function execute(taskId: number, fn: { hash: string; source?: string }, ...args: unknown[]): TaskMessage {
  return {
    type: 'execute',
    taskId,
    returnId: `r${taskId}`,
    fn: { name: 'fn', ...fn },
    args: args.map((value) => ({ value: writeInline(encodeValue(value)) })),
  };
}

function resultOf(message: WorkerToNode | undefined): unknown {
  assert.equal(message?.type, 'done');
  return decodeValue(message.result.bytes!, { copy: true, where: 'result' });
}

function errorOf(message: WorkerToNode | undefined): Error {
  assert.equal(message?.type, 'failed');
  return decodeThrown(message.error) as Error;
}

/** A way to hold tasks in the middle of running, shared with their code through globalThis. */
function gate(): () => void {
  let open!: () => void;
  (globalThis as { gate?: Promise<void> }).gate = new Promise<void>((resolve) => (open = resolve));
  return open;
}

test('a task runs with its arguments, and its result is reported as done', async () => {
  const { tasks, sent } = executor();
  tasks.handle(execute(1, { hash: 'add', source: '(a, b) => a + b' }, 2, 3));
  await nextTurn();
  assert.equal(sent.length, 1);
  assert.equal(resultOf(sent[0]), 5);
  assert.equal(sent[0]?.type === 'done' && sent[0].taskId, 1);
});

test('a function that throws, or that does not compile, fails its task with that error', async () => {
  const { tasks, sent } = executor();
  tasks.handle(execute(1, { hash: 'boom', source: '() => { throw new RangeError("no") }' }));
  tasks.handle(execute(2, { hash: 'bad', source: '() => {' }));
  await nextTurn();
  const thrown = errorOf(sent[0]);
  assert.equal(thrown.name, 'RangeError');
  assert.equal(thrown.message, 'no');
  assert.equal(errorOf(sent[1]).name, 'SyntaxError');
});

test('a function is compiled once: later tasks of it come without source', async () => {
  const { tasks, sent } = executor();
  tasks.handle(execute(1, { hash: 'twice', source: '(x) => x * 2' }, 1));
  tasks.handle(execute(2, { hash: 'twice' }, 21));
  tasks.handle(execute(3, { hash: 'unknown' }));
  await nextTurn();
  assert.equal(resultOf(sent[1]), 42);
  assert.match(errorOf(sent[2]).message, /without its source/);
});

test('a function submitted from the worker is known to it', async () => {
  const { tasks, sent } = executor();
  tasks.learn({ hash: 'learned', name: 'learned', source: '() => "known"' });
  tasks.handle(execute(1, { hash: 'learned' }));
  await nextTurn();
  assert.equal(resultOf(sent[0]), 'known');
});

test('tasks run one at a time, in the order sent; a recall gives back those not started', async () => {
  const { tasks, sent } = executor();
  const open = gate();
  const source = 'async (n) => { await globalThis.gate; return n }';
  for (let taskId = 1; taskId <= 4; taskId++) tasks.handle(execute(taskId, { hash: 'held', source }, taskId));
  await nextTurn();
  assert.equal(sent.length, 0, 'the first task is still running');
  tasks.handle({ type: 'recall', taskIds: [1, 3, 99] });
  assert.deepEqual(sent[0], { type: 'recalled', taskIds: [3] }, 'the running task and unknown ids are not given back');
  open();
  await nextTurn();
  assert.deepEqual(
    sent.slice(1).map((message) => message.type === 'done' && message.taskId),
    [1, 2, 4],
  );
  assert.deepEqual(sent.slice(1).map(resultOf), [1, 2, 4]);
});
