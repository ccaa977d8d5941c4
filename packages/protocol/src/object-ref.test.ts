import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectRef } from './object-ref.js';

test('a ref cannot be built with an id or owner that is not an id: a forged `../../` never becomes a path', () => {
  for (const id of ['../../etc/passwd', '', 'a/b', 'x'.repeat(65), 'nul\0'] as const) {
    assert.throws(() => new ObjectRef(id, 'session'), { name: 'TypeError', message: `Expected \`id\` to be an id of 1-64 characters of [0-9A-Za-z_-], got \`${JSON.stringify(id)}\`` });
    assert.throws(() => new ObjectRef('abc', id), { name: 'TypeError', message: /^Expected `owner` to be an id/ });
  }
  assert.throws(() => new ObjectRef(42 as unknown as string, 'session'), { name: 'TypeError', message: /got `42`$/ });
  assert.throws(() => ObjectRef.from({ $shoalRef: 1, id: '../x', owner: 'session' }), TypeError);
  const ref = new ObjectRef('Az09_-', 'session');
  assert.deepEqual(ObjectRef.from(JSON.parse(JSON.stringify(ref))).toJSON(), ref.toJSON());
});
