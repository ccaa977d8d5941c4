import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as errors from './errors.js';
import { decodeMessage, encodeMessage } from './framing.js';
import type { WireFailure } from './head-protocol.js';
import { fromWireFailure, toWireFailure } from './wire-errors.js';

/** Through msgpack and back, as between nodes. */
const across = (error: Error): Error => fromWireFailure(decodeMessage(encodeMessage(toWireFailure(error))) as WireFailure);

/** One instance of each registered class; the type makes a code without a sample a compile error. */
const SAMPLES: { readonly [C in keyof typeof errors.ERROR_CLASSES]: () => errors.ShoalError } = {
  ERR_ACTOR_DIED: () => new errors.ActorDiedError('Counter', { kind: 'exited', exitCode: null, signal: 'SIGKILL' }, 2),
  ERR_ACTOR_NOT_FOUND: () => new errors.ActorNotFoundError('counter'),
  ERR_OBJECT_FREED: () => new errors.ObjectFreedError('abc', ' by store.free'),
  ERR_OBJECT_NOT_FOUND: () => new errors.ObjectNotFoundError('abc', 'no node holds it'),
  ERR_OBJECT_STORE_FULL: () => new errors.ObjectStoreFullError(10, 5, 12),
  ERR_OBJECT_CORRUPT: () => new errors.ObjectCorruptError('Object abc', 'bad magic'),
  ERR_OBJECT_LOST: () => new errors.ObjectLostError('abc', 'gone'),
  ERR_OBJECT_TOO_LARGE: () => new errors.ObjectTooLargeError({ size: 2 ** 31, objectId: 'abc' }),
  ERR_STORE_CLOSED: () => new errors.StoreClosedError('put'),
  ERR_SESSION_DIRECTORY: () => new errors.SessionDirectoryError('/dev/shm/shoal-x', '/dev/shm', 'EEXIST'),
  ERR_TOO_MANY_MAPPINGS: () => new errors.TooManyMappingsError('/dev/shm/shoal-x/abc', 100, 100),
  ERR_SPILL_FAILED: () => new errors.SpillError({ what: 'write 64 MiB', directory: '/var/tmp/shoal-spill/shoal-x', errnoCode: 'ENOSPC' }),
  ERR_DESCRIPTORS_EXHAUSTED: () => new errors.DescriptorsExhaustedError({ what: 'open /dev/shm/shoal-x/abc', errnoCode: 'EMFILE', open: 1024, limit: 1024 }),
  ERR_BIND_FAILED: () => new errors.BindFailedError('no such object'),
  ERR_TASK_FAILED: () => new errors.TaskError('parse', new RangeError('too big')),
  ERR_WORKER_CRASHED: () => new errors.WorkerCrashedError('sum', null, 'SIGKILL', 4),
  ERR_TASK_TIMEOUT: () => new errors.TaskTimeoutError('slow', 50),
  ERR_TASK_CANCELLED: () => new errors.TaskCancelledError('slow'),
  ERR_TASK_INFEASIBLE: () => new errors.InfeasibleTaskError('gpu', 'no gpu'),
  ERR_NODE_DIED: () => new errors.NodeDiedError('sum', { attempts: 2 }),
  ERR_HEAD_LOST: () => new errors.HeadLostError('sum'),
  ERR_RUNTIME_SHUTDOWN: () => new errors.RuntimeShutdownError('get'),
  ERR_WORKER_SPAWN: () => new errors.WorkerSpawnError(),
  ERR_RUNTIME_ENV: () => new errors.RuntimeEnvError('probe', 'cwd /x is not a directory on node N'),
  ERR_WORKER_LIMIT: () => new errors.WorkerLimitError('parent', 64),
  ERR_GET_TIMEOUT: () => new errors.GetTimeoutError(10, 2),
  ERR_IN_WORKER: () => new errors.InWorkerError(),
  ERR_ALREADY_INITIALIZED: () => new errors.AlreadyInitializedError(),
  ERR_NOT_AVAILABLE: () => new errors.NotAvailableError('stats'),
  ERR_NOT_CONNECTED: () => new errors.NotConnectedError('put'),
  ERR_BAD_FRAME: () => new errors.FrameError('too large'),
  ERR_BAD_MESSAGE: () => new errors.BadMessageError('`done.taskId` must be an integer'),
  ERR_NO_LOCAL_NODE: () => new errors.NoLocalNodeError('ws://h:1', '/home/x/.shoal'),
  ERR_ATTACH_FAILED: () => new errors.AttachFailedError({ to: 'head', headUrl: 'ws://h:1', statusCode: 500 }),
  ERR_NO_TOKEN: () => new errors.NoTokenError('ws://h:1'),
  ERR_BAD_TOKEN: () => new errors.BadTokenError('ws://h:1'),
  ERR_NODE_UNRESPONSIVE: () => new errors.NodeUnresponsiveError('work', { demand: 'CPU 1, gpu 1', nodes: ['gpubox (n1)'], heartbeatTimeoutMs: 5000 }),
  ERR_NODE_DISCONNECTED: () => new errors.NodeDisconnectedError('n1 (unix:/dev/shm/shoal-n1/node.sock)'),
  ERR_HEAD_UNREACHABLE: () => new errors.HeadUnreachableError('ws://h:1', 'ECONNREFUSED'),
  ERR_HEAD_CLOSED: () => new errors.HeadClosedError('ws://h:1', 4002, 'malformed message'),
  ERR_HEAD_PROTOCOL: () => new errors.HeadProtocolError('ws://h:1', 'did not welcome this connection'),
  ERR_HEAD_LISTEN: () => new errors.HeadListenError('0.0.0.0', 6380, 'the port is in use'),
  ERR_UNKNOWN: () => new errors.UnknownError('plain'),
};

test('every code of the registry crosses nodes as its own class, with its code and message', () => {
  for (const [code, make] of Object.entries(SAMPLES)) {
    const error = make();
    assert.equal(error.code, code, `${error.name} has the code it is registered under`);
    assert.equal(error.name, errors.ERROR_CLASSES[code as keyof typeof errors.ERROR_CLASSES].name);
    const back = across(error);
    assert.equal(back.constructor, error.constructor, code);
    assert.ok(back instanceof errors.ShoalError);
    assert.equal(back.name, error.name);
    assert.equal(back.code, code);
    assert.equal(back.message, error.message);
  }
});

test('a shared-memory error crosses as a errors.SharedMemoryError with its errno code', () => {
  const error = new errors.SharedMemoryError({ errnoCode: 'ENOSPC', errno: 28, syscall: 'ftruncate', path: '/dev/shm/x', advice: 'Free space.' });
  const back = across(error);
  assert.ok(back instanceof errors.SharedMemoryError);
  assert.equal((back as errors.ShoalError).code, 'ERR_SHM_ENOSPC');
  assert.equal(back.message, error.message);
});

test('task errors keep their cause and crashes their exit across nodes', () => {
  const task = across(new errors.TaskError('parse', new RangeError('too big')));
  assert.ok(task instanceof errors.TaskError);
  assert.equal(task.taskName, 'parse');
  assert.equal(task.remoteName, 'RangeError');
  assert.equal((task.cause as Error).message, 'too big');

  const crashed = across(new errors.WorkerCrashedError('sum', null, 'SIGKILL', 4));
  assert.ok(crashed instanceof errors.WorkerCrashedError);
  assert.deepEqual([crashed.signal, crashed.exitCode, crashed.attempts], ['SIGKILL', null, 4]);
});

test("an actor's death keeps why across nodes; a reason that does not parse still arrives as an ActorDiedError", () => {
  const died = across(new errors.ActorDiedError('Counter', { kind: 'node-died', nodeId: 'K3mX9qLp2ZtA' }, 1, false));
  assert.ok(died instanceof errors.ActorDiedError);
  assert.deepEqual([died.actorName, died.reason, died.restarts, died.final], ['Counter', { kind: 'node-died', nodeId: 'K3mX9qLp2ZtA' }, 1, false]);
  const garbled = fromWireFailure({ code: 'ERR_ACTOR_DIED', message: 'dead', actor: { name: 'Counter', reason: '{not json', restarts: 0, final: true } });
  assert.ok(garbled instanceof errors.ActorDiedError);
  assert.equal(garbled.message, 'dead');
});

test('a code this version does not know arrives as a errors.ShoalError with that code; a plain Error as ERR_UNKNOWN', () => {
  const back = fromWireFailure({ code: 'ERR_FROM_A_NEWER_PEER', message: 'the node left' });
  assert.ok(back instanceof errors.ShoalError);
  assert.equal((back as errors.ShoalError).code, 'ERR_FROM_A_NEWER_PEER');
  assert.equal(back.message, 'the node left');
  const plain = across(new Error('plain'));
  assert.ok(plain instanceof errors.UnknownError);
  assert.equal((plain as errors.ShoalError).code, 'ERR_UNKNOWN');
  assert.equal(plain.message, 'plain');
});
