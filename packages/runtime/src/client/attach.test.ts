import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameError } from '@shoal/protocol';
import { remoteFailure } from './attach.js';

const url = 'ws://head.example:6380';

test('only a socket error makes the head unreachable; a head that was reached fails as what happened', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', syscall: 'connect' });
  assert.equal(remoteFailure(url, refused).name, 'HeadUnreachableError');
  const noHost = Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
  assert.equal(remoteFailure(url, noHost).name, 'HeadUnreachableError');

  const frame = new FrameError('a length above the limit');
  assert.equal(remoteFailure(url, frame), frame, 'a bad frame stays itself');
  const ws = Object.assign(new RangeError('Invalid WebSocket frame: RSV1 must be clear'), { code: 'WS_ERR_UNEXPECTED_RSV_1' });
  const failed = remoteFailure(url, ws);
  assert.equal(failed.name, 'AttachFailedError');
  assert.equal(failed.cause, ws);
});
