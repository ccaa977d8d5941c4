import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeFromHead, decodeToHead, type ClusterActor, type ClusterTask, type FromHead, type NodeReport, type ToHead } from './head-protocol.js';
import { rejects, wire } from './schema.test-helpers.js';

const ID = 'Zq3kP9xT2mWv8LcR0001';
const NODE = 'K3mX9qLp2ZtA';
const OTHER_NODE = 'Q7wE4rT1yU2i';
const bytes = Buffer.from([9, 9]);

const report: NodeReport = {
  nodeId: NODE,
  hostname: 'box',
  pid: 4242,
  address: 'unix:/dev/shm/shoal-K3mX9qLp2ZtA/node.sock',
  dataUrl: 'ws://127.0.0.1:40001',
  resources: { CPU: 2, gpu: 1 },
  available: { CPU: 1.5, gpu: 1 },
  objects: 3,
  objectBytes: 4096,
  capacityBytes: 1 << 30,
  queuedTasks: 0,
  runningTasks: 1,
  workers: 2,
  pulls: 0,
  pulledBytes: 0,
  runsSeen: 5,
  spill: { spilledBytes: 1 << 20, spilledObjects: 1, diskBytes: 2 << 20, spills: 2, spillBytesTotal: 2 << 20, spillMs: 1.5, restores: 1, restoreBytesTotal: 1 << 20, restoreMs: 0.25 },
};
const task: ClusterTask = {
  returnId: ID,
  fn: { hash: 'abc', name: 'add', source: '(a, b) => a + b' },
  args: [{ value: bytes }, { ref: 'Zq3kP9xT2mWv8LcR0002', owner: NODE, size: 2, bytes }],
  options: { numCpus: 1, resources: {}, maxRetries: 0, retryExceptions: true, timeoutMs: 1000 },
};

const clusterActor: ClusterActor = {
  id: ID,
  cls: { hash: 'def', name: 'Counter', source: 'class Counter {}' },
  methods: ['add', '*stream'],
  args: [{ ref: 'Zq3kP9xT2mWv8LcR0002', owner: NODE, size: 800_000 }],
  options: { name: 'counter', detached: true, maxConcurrency: 1, maxRestarts: 2, maxTaskRetries: 0, numCpus: 0, resources: { gpu: 1 }, streamWindow: 16 },
};
const actorDied = { code: 'ERR_ACTOR_DIED', message: 'dead', actor: { name: 'Counter', reason: '{"kind":"killed"}', restarts: 1, final: true } };

const TO_HEAD: { readonly [T in ToHead['type']]: Extract<ToHead, { type: T }> } = {
  hello: { type: 'hello', role: 'node' },
  register: { type: 'register', node: report },
  heartbeat: { type: 'heartbeat', node: report },
  status: { type: 'status' },
  spill: { type: 'spill', task },
  accepted: { type: 'accepted', seq: 3, returnId: ID },
  result: { type: 'result', origin: NODE, returnId: ID, result: { ok: true, size: 2, bytes, contains: [{ id: ID, owner: NODE }] } },
  cancel: { type: 'cancel', returnId: ID },
  output: { type: 'output', origin: NODE, returnId: ID, stream: 'out', text: '(sum pid=4242 node=abc) a line\n' },
  objects: { type: 'objects', added: [[ID, 4096]], removed: ['Zq3kP9xT2mWv8LcR0003'] },
  locate: { type: 'locate', requestId: 1, ids: [ID] },
  'actor-place': { type: 'actor-place', actor: clusterActor },
  'actor-hosted': { type: 'actor-hosted', origin: OTHER_NODE, actor: clusterActor },
  'actor-ended': { type: 'actor-ended', actorId: ID, failure: actorDied },
  'actor-end': { type: 'actor-end', actorId: ID, why: 'out-of-scope' },
  'actor-locate': { type: 'actor-locate', requestId: 2, name: 'counter' },
};

const FROM_HEAD: { readonly [T in FromHead['type']]: Extract<FromHead, { type: T }> } = {
  welcome: { type: 'welcome', clusterId: 'C1uSt3rIdXyz' },
  registered: { type: 'registered', nodeId: NODE },
  status: { type: 'status', clusterId: 'C1uSt3rIdXyz', nodes: [{ ...report, lastSeenMs: 12 }] },
  view: { type: 'view', nodes: [{ nodeId: OTHER_NODE, dataUrl: 'ws://127.0.0.1:40002', total: { CPU: 4 }, available: { CPU: 0 } }] },
  run: { type: 'run', seq: 6, origin: OTHER_NODE, task, sources: { [ID]: ['ws://127.0.0.1:40002'] } },
  declined: { type: 'declined', returnId: ID },
  result: {
    type: 'result',
    returnId: ID,
    holder: '',
    holderUrl: '',
    result: { ok: false, failure: { code: 'ERR_WORKER_CRASHED', message: 'died', taskName: 'add', exitCode: null, signal: 'SIGKILL', attempts: 4 } },
  },
  output: { type: 'output', returnId: ID, stream: 'err', text: '(sum pid=4242 node=abc) a line\n' },
  cancel: { type: 'cancel', returnId: ID },
  located: { type: 'located', requestId: 1, holders: { [ID]: ['ws://127.0.0.1:40002'] } },
  'actor-host': { type: 'actor-host', origin: OTHER_NODE, actor: clusterActor, restarts: 1 },
  'actor-end': { type: 'actor-end', actorId: ID, failure: actorDied, restart: false },
  'actor-died': { type: 'actor-died', actorId: ID, failure: actorDied },
  'actor-located': { type: 'actor-located', requestId: 2, actor: { id: ID, className: 'Counter', methods: ['add'], nodeId: NODE, dataUrl: 'ws://127.0.0.1:40001' } },
};

describe('head protocol: to the head', () => {
  test('every message type decodes, through msgpack, to what was sent', () => {
    for (const message of Object.values(TO_HEAD)) assert.deepEqual(decodeToHead(wire(message)), wire(message));
  });

  test('a report whose available resources dipped below zero is still a report', () => {
    const overlapping = { type: 'heartbeat', node: { ...report, available: { CPU: -1, gpu: 0.30000000000000004 } } };
    assert.deepEqual(decodeToHead(wire(overlapping)), overlapping);
  });

  test('a wrong field is refused naming the message and the field', () => {
    rejects(decodeToHead, { type: 'spill', task: { ...task, options: { ...task.options, resources: { CPU: -1 } } } }, /`spill` .*`task\.options\.resources/);
    rejects(decodeToHead, { type: 'welcome', clusterId: 'x' }, /from a head client: type `welcome`/);
    rejects(decodeToHead, { type: 'hello', role: 'driver' }, /`hello` .*`role`/);
    rejects(decodeToHead, { type: 'heartbeat', node: { ...report, pid: '4242' } }, /`heartbeat` .*`node\.pid`/);
    rejects(decodeToHead, { type: 'register', node: { ...report, nodeId: '../up' } }, /`register` .*`node\.nodeId`/);
    rejects(decodeToHead, { type: 'spill', task: { ...task, args: [{ ref: ID, owner: NODE }] } }, /`spill` .*`task\.args\.0`/);
    rejects(decodeToHead, { ...TO_HEAD.result, result: { ok: false } }, /`result` .*`result`/);
    rejects(decodeToHead, { ...TO_HEAD.objects, added: [[ID, -1]] }, /`objects` .*`added\.0/);
    rejects(decodeToHead, { ...TO_HEAD.objects, added: [ID] }, /`objects` .*`added\.0`/);
    rejects(decodeToHead, { ...TO_HEAD.locate, requestId: 0.5 }, /`locate` .*`requestId`/);
  });
});

describe('head protocol: from the head', () => {
  test('every message type decodes, through msgpack, to what was sent', () => {
    for (const message of Object.values(FROM_HEAD)) assert.deepEqual(decodeFromHead(wire(message)), wire(message));
  });

  test('a wrong field is refused naming the message and the field', () => {
    rejects(decodeFromHead, { type: 'hello', role: 'node' }, /from the head: type `hello`/);
    rejects(decodeFromHead, { ...FROM_HEAD.run, seq: -1 }, /`run` .*`seq`/);
    rejects(decodeFromHead, { ...FROM_HEAD.run, sources: { [ID]: 'ws://x' } }, /`run` .*`sources/);
    rejects(decodeFromHead, { ...FROM_HEAD.view, nodes: [{ nodeId: OTHER_NODE }] }, /`view` .*`nodes\.0/);
    rejects(decodeFromHead, { ...FROM_HEAD.located, holders: { 'a b': [] } }, /`located` .*`holders/);
    rejects(decodeFromHead, { ...FROM_HEAD.status, nodes: [report] }, /`status` .*`nodes\.0\.lastSeenMs`/);
  });
});
