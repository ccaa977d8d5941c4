// Tasks and objects across nodes, one behaviour per test, each on its own in-process cluster
// (test/support/start-cluster.ts): every node has its own shm root, so objects must cross
// WebSocket, not shared memory. Drivers are child programs attached to a node (or joining
// through the head); a task names the node it ran on by its session id. The data server's
// handling of bad connections is tested beside it (cluster/transfer/data-server.test.ts); the
// last test here is about daemons: a killed one rejoins when started again.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { queryStatus } from '@shoal/runtime/cluster';
import { sweepStaleSessions } from '@shoal/store';
import { daemonOf, runProgram, shoal } from './cluster-helpers.js';
import { isAlive, until } from './runtime-helpers.js';
import { startCluster, type Cluster } from './support/start-cluster.js';

const DRIVER = fileURLToPath(new URL('./fixtures/cluster-cross.ts', import.meta.url));

/** Runs the driver fixture (`mode`, `args`) at `address`; resolves with its JSON line. */
async function drive<T>(address: string, mode: string, args: string[] = [], env: Record<string, string> = {}): Promise<T> {
  const run = await runProgram(DRIVER, [address, mode, ...args], env);
  assert.equal(run.code, 0, `driver ${mode} exited with ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** A driver that puts two objects on the node at `address` and holds them until disposed. */
async function holder(address: string): Promise<{ refs: [unknown, unknown] } & AsyncDisposable> {
  const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, address, 'hold']);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`the holding driver exited with ${code}`)));
  });
  return {
    refs: JSON.parse(line) as [unknown, unknown],
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

const nodeCount = async (cluster: Cluster) => (await queryStatus(cluster.url, cluster.token)).nodes.length;

test('a 1 GB object put on one node is pulled once by two tasks on another, with the right bytes', { timeout: 180_000 }, async () => {
  const memory = 1.5 * 1024 ** 3;
  await using cluster = await startCluster({ nodes: [{ objectStoreMemory: memory }, { objectStoreMemory: memory, resources: { gpu: 1 } }] });
  const [a, b] = cluster.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
  const transfer = await drive<{ local: string; first: { hash: string; length: number; node: string }; second: { hash: string; node: string } }>(
    a.address,
    'transfer',
    [String(1024 ** 3)],
  );
  assert.equal(transfer.first.node, b.nodeId, 'the task ran on node B');
  assert.equal(transfer.second.node, b.nodeId);
  assert.equal(transfer.first.length, 1024 ** 3 / 8);
  assert.equal(transfer.first.hash, transfer.local, 'B read the very bytes A wrote');
  assert.equal(transfer.second.hash, transfer.local);
  const { pulls, pulledBytes } = b.member.report();
  assert.equal(pulls, 1, 'two tasks wanting the object at once pull it once');
  assert.ok(pulledBytes >= 1024 ** 3);
});

test('results made on another node come back, and so does a ref put there inside one', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  const results = await drive(cluster.nodes[0]!.address, 'results');
  assert.deepEqual(results, { length: 1_000_000, last: 499_999.5, innerLength: 500_000, innerSum: 1_500_000 });
});

test('two results from another node referring to one object: it arrives once and stays until both go', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  assert.deepEqual(await drive(cluster.nodes[0]!.address, 'sameref'), { same: true, a: 4, b: 2_000_000 });
});

test('two tasks for two nodes that must each pull the argument first go one to each', { timeout: 120_000 }, async () => {
  const memory = 512 * 1024 ** 2;
  await using cluster = await startCluster({ objectStoreMemory: memory, nodes: [{}, { resources: { slot: 1 } }, { resources: { slot: 1 } }] });
  const [a, c, d] = cluster.nodes as [Cluster['nodes'][0], Cluster['nodes'][0], Cluster['nodes'][0]];
  // A node still pulling for a task it was given does not look free to the head.
  const spread = await drive<string[]>(a.address, 'spread', [String(256 * 1024 ** 2)]);
  assert.deepEqual([...spread].sort(), [c.nodeId, d.nodeId].sort());
});

test('a ref made on another node is pulled from there, and a task on it goes to the node holding it', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: 2 });
  const [a, b] = cluster.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
  await using held = await holder(b.address);
  const [firstRef] = held.refs;
  assert.deepEqual(await drive(a.address, 'get', [JSON.stringify(firstRef)]), { sum: 200_000 });
  // A is busy with the first of two tasks on that object: the second goes to B, which holds it.
  assert.deepEqual(await drive(a.address, 'locality', [JSON.stringify(firstRef)]), { first: a.nodeId, second: b.nodeId, length: 200_000 });
});

test('a task needing a resource no node offers is an InfeasibleTaskError naming what each offers', { timeout: 60_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  const infeasible = await drive<{ error: string; message: string }>(cluster.nodes[0]!.address, 'infeasible');
  assert.equal(infeasible.error, 'InfeasibleTaskError');
  assert.match(infeasible.message, /tpu 1[\s\S]*gpu 1/);
});

test('a program on a machine without a node joins through the head: objects travel as bytes, tasks run anywhere', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  const [a, b] = cluster.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
  // A SHOAL_HOME with no daemon: nothing on this machine to attach to.
  const home = mkdtempSync(join(tmpdir(), 'shoal-home-remote-'));
  try {
    const joined = await drive(cluster.url, 'remote', [], { SHOAL_HOME: home, SHOAL_TOKEN: cluster.token });
    assert.deepEqual(joined, {
      sessionId: a.nodeId,
      sum: 2_500_000,
      small: 2000,
      doubledLength: 5_000_000,
      doubledLast: 1,
      back: 5_000_000,
      onB: { length: 5_000_000, node: b.nodeId },
      getSync: 'ObjectNotFoundError',
      tooLarge: 'ERR_OBJECT_TOO_LARGE',
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('a program joining through the head with the wrong token is refused, and the head logs it', { timeout: 60_000 }, async () => {
  await using cluster = await startCluster({ nodes: 1 });
  const home = mkdtempSync(join(tmpdir(), 'shoal-home-remote-'));
  try {
    const run = await runProgram(DRIVER, [cluster.url, 'remote'], { SHOAL_HOME: home, SHOAL_TOKEN: 'not-the-token' });
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /refused the token/);
    assert.match(cluster.log.join('\n'), /refused a driver connection from .*: wrong or missing token/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('once the only node holding an object is gone, getting it is an ObjectLostError', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: 2 });
  const [a, b] = cluster.nodes as [Cluster['nodes'][0], Cluster['nodes'][0]];
  await using held = await holder(b.address);
  const [, secondRef] = held.refs;
  await b.kill();
  await until(async () => (await nodeCount(cluster)) === 1, 'the head to drop node B');
  const lost = await drive<{ error: string; message: string }>(a.address, 'get', [JSON.stringify(secondRef)]);
  assert.equal(lost.error, 'ObjectLostError', lost.message);
  assert.match(lost.message, /no node of the cluster holds it/);
});

test('the node running a task dies mid-task: the task runs again on another node that can run it', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { slot: 1 } }, { resources: { slot: 1 } }] });
  const [a, c, d] = cluster.nodes as [Cluster['nodes'][0], Cluster['nodes'][0], Cluster['nodes'][0]];
  const markers = mkdtempSync(join(tmpdir(), 'shoal-running-on-'));
  try {
    const runningOn = join(markers, 'running-on');
    const surviving = drive<{ ranOn: string }>(a.address, 'survive', [runningOn]);
    await until(() => existsSync(runningOn) && readFileSync(runningOn, 'utf8').length > 0, 'the task to start');
    const victim = [c, d].find((node) => node.nodeId === readFileSync(runningOn, 'utf8'));
    assert.ok(victim, 'it started on a slot node');
    await victim.kill();
    const { ranOn } = await surviving;
    assert.equal(ranOn, (victim === c ? d : c).nodeId, 'it ran on the surviving slot node');
    assert.match(cluster.log.join('\n'), /placing it again/);
  } finally {
    rmSync(markers, { recursive: true, force: true });
  }
});

test('daemons: a node killed with SIGKILL is dropped by the head and rejoins when started again; stop removes the sessions', { timeout: 120_000 }, async () => {
  const homes = ['a', 'b'].map((name) => mkdtempSync(join(tmpdir(), `shoal-home-${name}-`)));
  const [homeA, homeB] = homes as [string, string];
  const pids: number[] = [];
  try {
    const started = await shoal(homeA, ['start', '--head', '--port', '0', '--num-cpus', '1']);
    assert.equal(started.code, 0, started.stderr);
    const a = daemonOf(homeA);
    pids.push(a.pid);
    const token = readFileSync(join(homeA, 'token'), 'utf8').trim();
    const join_ = async () => {
      const run = await shoal(homeB, ['start', '--address', a.head, '--token', token, '--num-cpus', '1']);
      assert.equal(run.code, 0, run.stderr);
      pids.push(daemonOf(homeB).pid);
      return daemonOf(homeB);
    };
    const count = async () => (await queryStatus(a.head, token)).nodes.length;
    const b = await join_();
    await until(async () => (await count()) === 2, 'two nodes in the cluster');
    process.kill(b.pid, 'SIGKILL');
    // The head may drop it (its socket closed) before the process is reaped; `shoal start`
    // refuses a home whose daemon still runs.
    await until(() => !isAlive(b.pid), 'node B to die');
    await until(async () => (await count()) === 1, 'the head to drop node B');
    const again = await join_();
    await until(async () => (await queryStatus(a.head, token)).nodes.some((node) => node.pid === again.pid), 'the restarted node to rejoin');
    for (const home of [homeB, homeA]) assert.equal((await shoal(home, ['stop'])).code, 0);
    assert.ok(!existsSync(dirname(a.address.slice(5))), 'stop removes the session directory');
    assert.ok(!existsSync(dirname(again.address.slice(5))));
  } finally {
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await until(() => pids.every((pid) => !isAlive(pid)), 'the daemons to be gone');
    // Node B, killed, could not remove its session directory.
    sweepStaleSessions('/dev/shm');
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  }
});
