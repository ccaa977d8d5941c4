import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sameToken } from './guard.js';

test('sameToken: only the same token matches, whatever the lengths', () => {
  assert.equal(sameToken('s3cret-token', 's3cret-token'), true);
  assert.equal(sameToken('s3cret-tokem', 's3cret-token'), false);
  assert.equal(sameToken('s3cret', 's3cret-token'), false, 'a prefix');
  assert.equal(sameToken('s3cret-token-and-more', 's3cret-token'), false, 'longer');
  assert.equal(sameToken('', 's3cret-token'), false);
  assert.equal(sameToken('ü', 'ü'), true, 'beyond ASCII');
});
