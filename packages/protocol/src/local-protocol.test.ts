import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeNodeMessage, decodeWorkerMessage, type NodeToWorker, type WorkerToNode } from './local-protocol.js';
import { rejects, wire } from './schema.test-helpers.js';

const ID = 'Zq3kP9xT2mWv8LcR0001';
const OTHER = 'Zq3kP9xT2mWv8LcR0002';
const SESSION = 'K3mX9qLp2ZtA';
const bytes = Buffer.from([1, 2, 3]);
const options = { numCpus: 1, resources: { gpu: 0.5 }, maxRetries: 3, retryExceptions: ['TypeError'], timeoutMs: null };

/** One valid message of each type a worker or client sends; the type makes a missing one a compile error. */
const TO_NODE: { readonly [T in WorkerToNode['type']]: Extract<WorkerToNode, { type: T }> } = {
  ready: { type: 'ready', pid: 1234 },
  attach: { type: 'attach', pid: 1234, output: false },
  output: { type: 'output', stream: 'err', text: 'a line\n' },
  bind: { type: 'bind', requestId: 1, name: 'models/latest', id: ID },
  lookup: { type: 'lookup', requestId: 2, name: 'models/latest' },
  watch: { type: 'watch', name: 'models/latest' },
  unwatch: { type: 'unwatch', name: 'models/latest' },
  done: { type: 'done', taskId: 7, result: { size: 3, bytes, contains: [OTHER] } },
  failed: { type: 'failed', taskId: 7, error: bytes },
  put: { type: 'put', id: ID, payload: { size: 1 << 20, contains: [] } },
  submit: {
    type: 'submit',
    task: { returnId: ID, fn: { hash: 'abc', name: 'add', source: '(a, b) => a + b' }, args: [{ value: bytes }, { ref: OTHER, owner: SESSION }], contains: [], options },
  },
  resolve: { type: 'resolve', requestId: 3, ids: [ID], owners: [SESSION] },
  wait: { type: 'wait', requestId: 4, ids: [ID, OTHER], numReturns: 1, timeoutMs: 50 },
  reserve: { type: 'reserve', requestId: 5, id: ID, size: 100 << 20 },
  room: { type: 'room', requestId: 6, size: 1 << 30 },
  collected: { type: 'collected', round: 3 },
  cancel: { type: 'cancel', id: ID },
  free: { type: 'free', ids: [ID] },
  refs: { type: 'refs', hold: [ID], release: [OTHER] },
  recalled: { type: 'recalled', taskIds: [7, 8] },
  'actor-create': {
    type: 'actor-create',
    actorId: ID,
    cls: { hash: 'abc', name: 'Counter', source: 'class Counter { add(k) { return k; } }' },
    methods: ['add', '*stream'],
    args: [{ value: bytes }],
    contains: [],
    options: { name: 'counter', detached: false, maxConcurrency: 1, maxRestarts: 2, maxTaskRetries: 0, numCpus: 0, resources: {}, streamWindow: 16 },
  },
  'actor-call': { type: 'actor-call', actorId: ID, returnId: OTHER, method: 'add', args: [{ ref: ID }], contains: [] },
  'actor-kill': { type: 'actor-kill', actorId: ID, noRestart: true },
  'actor-lookup': { type: 'actor-lookup', requestId: 8, name: 'counter' },
  'actor-ready': { type: 'actor-ready' },
  'actor-failed': { type: 'actor-failed', error: bytes },
  'stream-item': { type: 'stream-item', taskId: 7, index: 0, id: ID, result: { size: 3, bytes, contains: [] } },
  'stream-pull': { type: 'stream-pull', requestId: 9, returnId: ID, index: 4 },
  'stream-close': { type: 'stream-close', returnId: ID },
  'stream-wait': { type: 'stream-wait', requestId: 10, taskId: 7, index: 16 },
};

const FROM_NODE: { readonly [T in NodeToWorker['type']]: Extract<NodeToWorker, { type: T }> } = {
  output: { type: 'output', stream: 'out', text: '(sum pid=4242) a line\n' },
  execute: {
    type: 'execute',
    taskId: 7,
    returnId: ID,
    fn: { hash: 'abc', name: 'add' },
    args: [{ value: bytes }, { ref: OTHER, location: { kind: 'segment', size: 4096 } }],
  },
  resolved: {
    type: 'resolved',
    requestId: 3,
    locations: { [ID]: { kind: 'inline', bytes }, [OTHER]: { kind: 'error', error: bytes }, A1: { kind: 'freed' }, B2: { kind: 'spilled' } },
  },
  waited: { type: 'waited', requestId: 4, ready: [ID] },
  forget: { type: 'forget', ids: [ID] },
  recall: { type: 'recall', taskIds: [7] },
  shutdown: { type: 'shutdown' },
  welcome: { type: 'welcome', sessionId: SESSION, directory: '/dev/shm/shoal-K3mX9qLp2ZtA', inlineThreshold: 102400 },
  collect: { type: 'collect', round: 3 },
  reserved: { type: 'reserved', requestId: 5, error: bytes },
  bound: { type: 'bound', requestId: 1, version: 0, error: 'no such object' },
  'looked-up': { type: 'looked-up', requestId: 2, id: null, version: 0 },
  named: { type: 'named', name: 'models/latest', id: ID, version: 2 },
  'actor-init': { type: 'actor-init', actorId: ID, cls: { hash: 'abc', name: 'Counter', source: 'class Counter {}' }, args: [], maxConcurrency: 4, streamWindow: 16 },
  call: { type: 'call', taskId: 3, returnId: OTHER, method: 'add', args: [{ value: bytes }], stream: false },
  'actor-found': { type: 'actor-found', requestId: 8, actorId: ID, className: 'Counter', methods: ['add'] },
  credit: { type: 'credit', taskId: 3, upTo: 32, stop: false },
  'stream-next': { type: 'stream-next', requestId: 9, id: ID, end: false },
  'stream-go': { type: 'stream-go', requestId: 10, upTo: 32, stop: false },
};

describe('local protocol: worker and client -> node', () => {
  test('every message type decodes, through msgpack, to what was sent', () => {
    for (const message of Object.values(TO_NODE)) assert.deepEqual(decodeWorkerMessage(wire(message)), wire(message));
  });

  test('an unknown type, or something that is not a message, is refused naming what came', () => {
    rejects(decodeWorkerMessage, { type: 'execute', taskId: 1 }, /from a worker: type `execute`/);
    rejects(decodeWorkerMessage, [1, 2], /an array, not a message object/);
    rejects(decodeWorkerMessage, 'ready', /string, not a message object/);
  });

  test('a wrong field is refused naming the message and the field', () => {
    rejects(decodeWorkerMessage, { type: 'ready', pid: 1.5 }, /`ready` .*`pid`/);
    rejects(decodeWorkerMessage, { type: 'attach' }, /`attach` .*`pid`/);
    rejects(decodeWorkerMessage, { ...TO_NODE.done, taskId: -1 }, /`done` .*`taskId`/);
    rejects(decodeWorkerMessage, { ...TO_NODE.done, result: { size: 3, contains: ['../etc'] } }, /`done` .*`result\.contains\.0`/);
    rejects(decodeWorkerMessage, { ...TO_NODE.failed, error: 'text' }, /`failed` .*`error`/);
    rejects(decodeWorkerMessage, { ...TO_NODE.put, id: 'a/b' }, /`put` .*`id`/);
    rejects(decodeWorkerMessage, { ...TO_NODE.bind, name: 'bad name!' }, /`bind` .*`name`/);
    rejects(decodeWorkerMessage, { ...TO_NODE.resolve, owners: 'K3mX9qLp2ZtA' }, /`resolve` .*`owners`/);
    rejects(decodeWorkerMessage, { ...TO_NODE.wait, timeoutMs: -5 }, /`wait` .*`timeoutMs`/);
    rejects(decodeWorkerMessage, { ...TO_NODE.refs, hold: [ID, 7] }, /`refs` .*`hold\.1`/);
    rejects(decodeWorkerMessage, { ...TO_NODE.recalled, taskIds: ['7'] }, /`recalled` .*`taskIds\.0`/);
    rejects(decodeWorkerMessage, { type: 'watch', name: 42 }, /`watch` .*`name`/);
  });

  test('a submitted task is checked down to its options and arguments', () => {
    const task = TO_NODE.submit.task;
    rejects(decodeWorkerMessage, { type: 'submit', task: { ...task, returnId: '' } }, /`task\.returnId`/);
    rejects(decodeWorkerMessage, { type: 'submit', task: { ...task, fn: { hash: 'abc', name: 'add' } } }, /`task\.fn\.source`/);
    rejects(decodeWorkerMessage, { type: 'submit', task: { ...task, options: { ...options, maxRetries: 1.5 } } }, /`task\.options\.maxRetries`/);
    rejects(decodeWorkerMessage, { type: 'submit', task: { ...task, options: { ...options, resources: { gpu: 'one' } } } }, /`task\.options\.resources/);
    rejects(decodeWorkerMessage, { type: 'submit', task: { ...task, args: [{ ref: '..' }] } }, /`task\.args\.0`/);
  });
});

describe('local protocol: node -> worker and client', () => {
  test('every message type decodes, through msgpack, to what was sent', () => {
    for (const message of Object.values(FROM_NODE)) assert.deepEqual(decodeNodeMessage(wire(message)), wire(message));
  });

  test('a wrong field is refused naming the message and the field', () => {
    rejects(decodeNodeMessage, { type: 'ready', pid: 1 }, /from the node: type `ready`/);
    rejects(decodeNodeMessage, { ...FROM_NODE.execute, fn: { hash: 'abc' } }, /`execute` .*`fn\.name`/);
    rejects(decodeNodeMessage, { ...FROM_NODE.execute, args: [{ ref: ID, location: { kind: 'disk' } }] }, /`execute` .*`args\.0`/);
    rejects(decodeNodeMessage, { ...FROM_NODE.resolved, locations: { 'a/b': { kind: 'freed' } } }, /`resolved` .*`locations/);
    rejects(decodeNodeMessage, { ...FROM_NODE.welcome, sessionId: '../x' }, /`welcome` .*`sessionId`/);
    rejects(decodeNodeMessage, { ...FROM_NODE['looked-up'], id: 5 }, /`looked-up` .*`id`/);
    rejects(decodeNodeMessage, { ...FROM_NODE.bound, version: null }, /`bound` .*`version`/);
  });
});
