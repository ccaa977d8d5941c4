import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AttachFailedError,
  BadTokenError,
  ERROR_CLASSES,
  NodeDiedError,
  ObjectTooLargeError,
  SharedMemoryError,
  ShoalError,
  errorClassOf,
} from './errors.js';

test('every registered class is a ShoalError whose static code is its registry key', () => {
  for (const [code, ErrorClass] of Object.entries(ERROR_CLASSES)) {
    assert.equal(ErrorClass.code, code);
    assert.ok(ErrorClass.prototype instanceof ShoalError, `${ErrorClass.name} extends ShoalError`);
    assert.equal(errorClassOf(code), ErrorClass);
  }
});

test('errorClassOf knows the shared-memory family and nothing else', () => {
  assert.equal(errorClassOf('ERR_SHM_ENOSPC'), SharedMemoryError);
  assert.equal(errorClassOf('ERR_SHM_'), undefined);
  assert.equal(errorClassOf('ERR_FROM_A_NEWER_PEER'), undefined);
  assert.equal(errorClassOf('toString'), undefined);
});

test('the two token refusals keep their texts: a driver and a node pass tokens differently', () => {
  assert.equal(
    new BadTokenError('ws://h:1').message,
    "The head at ws://h:1 refused the token. Use the cluster's token (on the head's machine it is in $SHOAL_HOME/token).",
  );
  assert.equal(
    new BadTokenError('ws://h:1', '--token or SHOAL_TOKEN').message,
    "The head at ws://h:1 refused the token. Use the cluster's token (--token or SHOAL_TOKEN; on the head's machine it is in $SHOAL_HOME/token).",
  );
});

test('attach failures say what to check for the cause they had', () => {
  const node = (errnoCode?: string) => new AttachFailedError({ to: 'node', address: 'unix:/x', errnoCode, reason: 'boom' }).message;
  assert.match(node('ECONNREFUSED'), /\(ECONNREFUSED\)\. No node runs there: is it running .*SHOAL_ADDRESS/);
  assert.match(node('EACCES'), /belongs to another user/);
  assert.match(node(), /^Cannot attach to the Shoal node at unix:\/x \(boom\)\. $/);
  assert.match(new AttachFailedError({ to: 'head', headUrl: 'ws://h', reason: 'ECONNREFUSED' }).message, /Is the head running\?/);
  assert.match(new AttachFailedError({ to: 'head', headUrl: 'ws://h', statusCode: 503 }).message, /\(HTTP 503\)/);
});

test('messages with variants pick the one their arguments call for', () => {
  assert.match(new NodeDiedError('t', { attempts: 3 }).message, /on each of 3 attempt\(s\)\. Raise `maxRetries`/);
  assert.match(new NodeDiedError('t', { demand: '2 CPUs' }).message, /no node there now offers 2 CPUs\. Start one/);
  assert.match(new ObjectTooLargeError({ size: 2 ** 31 }).message, /^Cannot store an object of 2\.00 GiB.*Split it/);
  assert.match(new ObjectTooLargeError({ size: 2 ** 31, objectId: 'abc' }).message, /^Object abc is 2\.00 GiB.*Read it in a task/);
});
