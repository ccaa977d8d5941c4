import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectFreedError } from '@shoal/protocol';
import { ObjectTable, wake } from './object-table.js';

test('a pending object settles as ready, waking what waits for it once woken', async () => {
  const table = new ObjectTable();
  table.expect('a');
  assert.deepEqual(table.status('a'), { state: 'pending' });
  let called = 0;
  table.onSettled('a', () => called++);
  const settled = table.whenSettled('a');
  const waiters = table.ready('a', table.get('a'), 10, undefined, ['b']);
  assert.equal(called, 0, 'waiters are the caller’s to wake');
  wake(waiters);
  await settled;
  assert.equal(called, 1);
  assert.deepEqual(table.status('a'), { state: 'ready', size: 10, bytes: undefined, contains: ['b'] });
  table.onSettled('a', () => called++);
  assert.equal(called, 2, 'a settled object calls back at once');
});

test('a failed object reports its error; an unknown id is freed', () => {
  const table = new ObjectTable();
  table.expect('a');
  const error = new Error('task failed');
  wake(table.fail(table.get('a')!, error));
  assert.deepEqual(table.status('a'), { state: 'failed', error });
  assert.deepEqual(table.status('missing'), { state: 'freed' });
});

test('removing a pending object fails its waiters with ObjectFreedError', async () => {
  const table = new ObjectTable();
  table.expect('a');
  const settled = table.whenSettled('a');
  const removed = table.remove('a');
  await settled;
  assert.equal(removed?.state, 'failed');
  assert.ok(removed?.error instanceof ObjectFreedError);
  assert.equal(table.has('a'), false);
  assert.equal(table.remove('a'), undefined);
});

test('an id can be expected only once', () => {
  const table = new ObjectTable();
  table.expect('a');
  assert.throws(() => table.expect('a'), /object a already exists/);
  table.ready('b', undefined, 1, new Uint8Array(1), []);
  assert.equal(table.size, 2);
  table.clear();
  assert.equal(table.size, 0);
});
