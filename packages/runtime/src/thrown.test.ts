import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  InfeasibleTaskError,
  ObjectLostError,
  ShoalError,
  TaskError,
  TaskTimeoutError,
  WorkerCrashedError,
  decodeMessage,
  encodeMessage,
  type WireFailure,
} from '@shoal/protocol';
import { fromWireFailure, toWireFailure } from './thrown.js';

/** Through msgpack and back, as between nodes. */
const across = (error: Error): Error => fromWireFailure(decodeMessage(encodeMessage(toWireFailure(error))) as WireFailure);

test('errors keep their class, code and message across nodes', () => {
  const thrown = new RangeError('too big');
  const task = across(new TaskError('parse', thrown));
  assert.ok(task instanceof TaskError);
  assert.equal(task.taskName, 'parse');
  assert.equal(task.remoteName, 'RangeError');
  assert.equal((task.cause as Error).message, 'too big');

  const crashed = across(new WorkerCrashedError('sum', null, 'SIGKILL', 4));
  assert.ok(crashed instanceof WorkerCrashedError);
  assert.deepEqual([crashed.signal, crashed.exitCode, crashed.attempts], ['SIGKILL', null, 4]);

  for (const error of [new TaskTimeoutError('slow', 50), new InfeasibleTaskError('gpu', 'no gpu'), new ObjectLostError('abc', 'gone')]) {
    const back = across(error);
    assert.equal(back.constructor, error.constructor);
    assert.equal(back.message, error.message);
    assert.equal((back as ShoalError).code, (error as ShoalError).code);
  }
});

test('an error of no known class arrives as a ShoalError with its code', () => {
  const back = across(new ShoalError('ERR_NODE_DIED', 'the node left'));
  assert.ok(back instanceof ShoalError);
  assert.equal((back as ShoalError).code, 'ERR_NODE_DIED');
  assert.equal(back.message, 'the node left');
  const plain = across(new Error('plain'));
  assert.equal((plain as ShoalError).code, 'ERR_UNKNOWN');
});
