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

test('waitSettled: a flag per position, duplicates counting twice, one wake for a batch, and no waiter left once it ends', async () => {
  const table = new ObjectTable();
  for (const id of ['a', 'b', 'c']) table.expect(id);
  table.ready('r', undefined, 1, undefined, []);
  assert.deepEqual([...(await table.waitSettled(['r', 'a', 'gone'], 2, null))], [1, 0, 1], 'enough settled already: at once');
  // Another waiter on `a` stays where it is when the wait ends.
  let other = 0;
  table.onSettled('a', () => other++);
  const timedOut = await table.waitSettled(['a', 'b', 'a', 'c'], 4, 5);
  assert.deepEqual([...timedOut], [0, 0, 0, 0]);
  for (const id of ['b', 'c']) assert.equal(table.get(id)!.waiters, undefined, `nothing left on ${id}`);
  assert.equal(typeof table.get('a')!.waiters, 'function', 'only the other waiter is left on a');
  // `a` given twice counts twice: two of [a, b, a] once `a` settles; `b`, settled in the same
  // turn, is in the answer too.
  const waited = table.waitSettled(['a', 'b', 'a'], 2, null);
  wake(table.ready('a', table.get('a'), 1, undefined, []));
  wake(table.ready('b', table.get('b'), 1, undefined, []));
  assert.deepEqual([...(await waited)], [1, 1, 1]);
  assert.equal(other, 1);
  assert.equal(table.get('c')!.waiters, undefined);
  // A pending object removed settles (freed) for the wait.
  const freed = table.waitSettled(['c'], 1, null);
  table.remove('c');
  assert.deepEqual([...(await freed)], [1]);
});
