import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectDirectory } from './object-directory.js';

test('a node reporting an object holds it; others do not', () => {
  const directory = new ObjectDirectory();
  directory.record('a', [['x', 10]], []);
  assert.equal(directory.holds('x', 'a'), true);
  assert.equal(directory.holds('x', 'b'), false);
  assert.equal(directory.holds('y', 'a'), false);
  assert.deepEqual([...directory.holders('y')], []);
});

test('holders are listed in the order they reported the object, each once', () => {
  const directory = new ObjectDirectory();
  directory.record('b', [['x', 10]], []);
  directory.record('a', [['x', 10]], []);
  directory.record('b', [['x', 10]], []);
  assert.deepEqual([...directory.holders('x')], ['b', 'a']);
});

test('an object its last holder removed is forgotten', () => {
  const directory = new ObjectDirectory();
  directory.record('a', [['x', 10], ['y', 20]], []);
  directory.record('b', [['x', 10]], []);
  directory.record('a', [], ['x', 'unknown']);
  assert.deepEqual([...directory.holders('x')], ['b']);
  directory.record('b', [], ['x']);
  assert.equal(directory.holds('x', 'b'), false);
  assert.equal(directory.size, 1, 'only y is left');
});

test('one message may add and remove: additions first, so an object re-added and removed is gone', () => {
  const directory = new ObjectDirectory();
  directory.record('a', [['x', 10]], ['x']);
  assert.equal(directory.holds('x', 'a'), false);
  assert.equal(directory.size, 0);
});

test('a node that left holds nothing; objects only it held are forgotten', () => {
  const directory = new ObjectDirectory();
  directory.record('a', [['x', 10], ['y', 20], ['z', 30]], []);
  directory.record('b', [['y', 20]], []);
  directory.forget('a');
  assert.equal(directory.holds('x', 'a'), false);
  assert.deepEqual([...directory.holders('y')], ['b']);
  assert.equal(directory.size, 1);
});
