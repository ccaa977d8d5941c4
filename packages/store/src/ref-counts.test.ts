import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectRef } from '@shoal/protocol';
import { collectGarbage } from './collect-garbage.js';
import { ObjectTable } from './object-table.js';
import { RefCounts } from './ref-counts.js';

function counted(): { table: ObjectTable; refs: RefCounts; dropped: string[] } {
  const table = new ObjectTable();
  const dropped: string[] = [];
  const refs = new RefCounts(table, 'session', (id) => {
    dropped.push(id);
    table.remove(id);
  });
  return { table, refs, dropped };
}

test('an object is dropped when its last hold is released', () => {
  const { table, refs, dropped } = counted();
  table.ready('a', undefined, 1, undefined, []);
  assert.equal(refs.hold('a'), true);
  assert.equal(refs.hold('a'), true);
  refs.release('a');
  assert.deepEqual(dropped, []);
  refs.release('a');
  assert.deepEqual(dropped, ['a']);
  assert.equal(refs.hold('a'), false, 'a dropped object cannot be held');
});

test('a pending object is not dropped at zero: its task settles it first', () => {
  const { table, refs, dropped } = counted();
  table.expect('p');
  refs.hold('p');
  refs.release('p');
  assert.deepEqual(dropped, []);
  assert.equal(table.get('p')?.count, 0);
});

test('contained refs are held only for objects that exist', () => {
  const { table, refs } = counted();
  table.ready('a', undefined, 1, undefined, []);
  assert.deepEqual(refs.retainContained(['a', 'gone']), ['a']);
  assert.equal(table.get('a')?.count, 1);
});

test('a sweep after a collection counts a dropped segment ref out at once, and its finalizer then counts nothing', async () => {
  const { table, refs, dropped } = counted();
  table.ready('s', undefined, 1 << 20, undefined, []);
  refs.hold('s');
  // Made in another function and another turn: nothing but the registry and the sweep see it.
  (() => refs.track(new ObjectRef('s', 'session')))();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(table.get('s')?.count, 2);
  collectGarbage();
  assert.equal(refs.sweep(), 1, 'the dropped ref is found dead');
  assert.equal(table.get('s')?.count, 1, 'counted out once, the hold remains');
  // Its finalization callback runs later and must not count it out a second time.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(table.get('s')?.count, 1);
  assert.equal(refs.sweep(), 0);
  assert.deepEqual(dropped, []);
});
