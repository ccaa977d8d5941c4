import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeValue } from '@shoal/protocol';
import { nodeSocketPath, sessionOfSocket } from './session-directory.js';
import { SessionSegments } from './session-segments.js';

test('a process writes a segment and reads it back, and reads other sessions of the machine', (t) => {
  const root = mkdtempSync('/dev/shm/store-test-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'shoal-mine'));
  mkdirSync(join(root, 'shoal-theirs'));
  const mine = new SessionSegments(join(root, 'shoal-mine'), 8);
  const theirs = new SessionSegments(join(root, 'shoal-theirs'), 8);
  const encoded = encodeValue(new Float64Array([1, 2, 3]));
  theirs.writeEncoded('x', encoded);
  assert.deepEqual(theirs.read('x', encoded.layout.totalSize), new Float64Array([1, 2, 3]));
  assert.equal(theirs.cachedMappings, 1);
  assert.deepEqual(mine.readOther('x', 'theirs'), new Float64Array([1, 2, 3]));
  assert.throws(() => mine.check('x'), { code: 'ENOENT' });
  assert.throws(() => mine.readOther('gone', 'theirs'), { code: 'ERR_OBJECT_FREED' });
  theirs.forget(['x']);
  assert.equal(theirs.cachedMappings, 0);
});

test('a missing segment is the SharedMemoryError users know', (t) => {
  const root = mkdtempSync('/dev/shm/store-test-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const segments = new SessionSegments(root, 8);
  assert.throws(() => segments.read('missing'), {
    name: 'SharedMemoryError',
    code: 'ERR_SHM_ENOENT',
    message: `open failed for ${join(root, 'missing')} (ENOENT). The segment does not exist: the object was freed, its session ended, or its node spilled it to disk (a process told of it mapped it too late): \`await get(ref)\` asks the node, which reads it back.`,
  });
});

test('a node socket path names its session and directory; anything else is not one', () => {
  const socket = nodeSocketPath('/dev/shm/shoal-abc');
  assert.equal(socket, '/dev/shm/shoal-abc/node.sock');
  assert.deepEqual(sessionOfSocket(socket), { sessionId: 'abc', directory: '/dev/shm/shoal-abc' });
  for (const path of ['dev/shm/shoal-abc/node.sock', '/dev/shm/other/node.sock', '/dev/shm/shoal-abc/node.sock/', '/dev/shm/shoal-abc/x.sock']) {
    assert.equal(sessionOfSocket(path), undefined, path);
  }
});
