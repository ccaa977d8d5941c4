import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDaemonOptions, type DaemonOptions } from './daemon-options.js';

const join = 'ws://10.0.0.1:6380';
const flags = (key: string) => `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;

test('valid options come back with only the keys given', () => {
  assert.deepEqual(resolveDaemonOptions({ join }), { join });
  assert.deepEqual(resolveDaemonOptions({ head: { host: '0.0.0.0', port: 0 }, numCpus: 0.5, resources: { gpu: 1 }, dataPort: 65535 }), {
    head: { host: '0.0.0.0', port: 0 },
    numCpus: 0.5,
    resources: { gpu: 1 },
    dataPort: 65535,
  });
  assert.deepEqual(resolveDaemonOptions({ join: 'wss://head.example:443', nodeIp: '::1', objectStoreMemory: 1 << 20, heartbeatTimeoutMs: 1500 }), {
    join: 'wss://head.example:443',
    nodeIp: '::1',
    objectStoreMemory: 1 << 20,
    heartbeatTimeoutMs: 1500,
  });
  assert.deepEqual(resolveDaemonOptions({ join, spillDirectory: '/mnt/disk/spill' }), { join, spillDirectory: '/mnt/disk/spill' });
  assert.deepEqual(resolveDaemonOptions({ join, spillDirectory: false }), { join, spillDirectory: false });
});

const invalid: [string, DaemonOptions, RegExp][] = [
  ['neither head nor join', {}, /either `head` or `join`/],
  ['a relative spill directory', { join, spillDirectory: 'spill' }, /Expected `spillDirectory` to be an absolute path \(or false to turn spilling off\), got `"spill"`/],
  ['both head and join', { join, head: { host: '127.0.0.1', port: 1 } }, /either `head` or `join`/],
  ['a join without a scheme', { join: '10.0.0.1:6380' }, /Expected `join` to be a head address like ws:\/\/HOST:PORT, got `"10\.0\.0\.1:6380"`/],
  ['a join with a path', { join: 'ws://h:1/x' }, /Expected `join`/],
  ['a port above 65535', { head: { host: 'h', port: 65536 } }, /Expected `port` to be a port number \(0-65535\), got `65536`/],
  ['a port that is text', { head: { host: 'h', port: 'abc' as unknown as number } }, /got `"abc"`/],
  ['an empty host', { head: { host: '', port: 1 } }, /Expected `host`/],
  ['negative CPUs', { join, numCpus: -1 }, /Expected `numCpus` to be a non-negative number, got `-1`/],
  ['a resource amount that is text', { join, resources: { gpu: 'x' as unknown as number } }, /Expected `resources\.gpu` to be a non-negative number/],
  ['CPU among the resources', { join, resources: { CPU: 2 } }, /Use `numCpus` rather than `resources\.CPU`/],
  ['a fractional store size', { join, objectStoreMemory: 1.5 }, /Expected `objectStoreMemory` to be a positive integer, got `1\.5`/],
  ['a zero store size', { join, objectStoreMemory: 0 }, /Expected `objectStoreMemory`/],
  ['a host name as node IP', { join, nodeIp: 'localhost' }, /Expected `nodeIp` to be an IP address, got `"localhost"`/],
  ['a negative data port', { join, dataPort: -1 }, /Expected `dataPort` to be a port number/],
  ['a zero heartbeat timeout', { join, heartbeatTimeoutMs: 0 }, /Expected `heartbeatTimeoutMs` to be a positive integer/],
];

for (const [what, options, message] of invalid) {
  test(`refused: ${what}`, () => {
    assert.throws(() => resolveDaemonOptions(options), (error: unknown) => error instanceof TypeError && message.test(error.message));
  });
}

test('messages name an option as the label says (the CLI: its flag)', () => {
  assert.throws(() => resolveDaemonOptions({ join, numCpus: -1 }, flags), /Expected `--num-cpus` to be a non-negative number, got `-1`/);
  assert.throws(() => resolveDaemonOptions({ join, resources: { gpu: -1 } }, flags), /Expected `--resources\.gpu`/);
  assert.throws(() => resolveDaemonOptions({ head: { host: 'h', port: -1 } }, flags), /Expected `--port`/);
});
