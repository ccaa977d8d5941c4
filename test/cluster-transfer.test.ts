// Tasks and objects across nodes, end to end with real daemons: a head (node A) and nodes B, C, D
// on loopback, each with its own SHOAL_HOME and so its own session directory — objects must
// cross WebSocket, not shared memory. A driver attached to A puts objects; tasks that need a
// resource only other nodes offer run there and pull what they read.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeMessage } from '@shoal/protocol';
import { sweepStaleSessions } from '@shoal/store';
import { closeCodeFor, daemonOf, shoal } from './cluster-helpers.js';
import { isAlive, until } from './runtime-helpers.js';

const DRIVER = fileURLToPath(new URL('./fixtures/cluster-cross.ts', import.meta.url));

/** Runs the driver fixture attached to the node of `home`; resolves with its JSON line. */
function driver<T>(home: string, head: string, args: string[], env: Record<string, string> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, head, ...args], { env: { ...process.env, SHOAL_HOME: home, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`driver ${args.join(' ')} exited with ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout) as T);
    });
  });
}

interface NodeStatus {
  nodeId: string;
  pid: number;
  pulls: number;
  pulledBytes: number;
  objects: number;
  dataUrl: string;
}

async function statusOf(home: string): Promise<NodeStatus[]> {
  const run = await shoal(home, ['status', '--json']);
  assert.equal(run.code, 0, run.stderr);
  return (JSON.parse(run.stdout) as { nodes: NodeStatus[] }).nodes;
}

test('objects and tasks cross nodes: 1 GB pulled once with the right bytes, results come back, objects on a dead node are lost, its task runs elsewhere', { timeout: 300_000 }, async () => {
  const homes = ['a', 'b', 'c', 'd'].map((name) => mkdtempSync(join(tmpdir(), `shoal-home-${name}-`)));
  const [homeA, homeB, homeC, homeD] = homes as [string, string, string, string];
  const pids: number[] = [];
  const children: ChildProcess[] = [];
  try {
    const started = await shoal(homeA, ['start', '--head', '--port', '0', '--num-cpus', '1']);
    assert.equal(started.code, 0, started.stderr);
    const a = daemonOf(homeA);
    pids.push(a.pid);
    const token = readFileSync(join(homeA, 'token'), 'utf8').trim();
    const join_ = async (home: string, resources: string) => {
      const run = await shoal(home, ['start', '--address', a.head, '--token', token, '--num-cpus', '1', '--resources', resources]);
      assert.equal(run.code, 0, run.stderr);
      pids.push(daemonOf(home).pid);
      return daemonOf(home);
    };
    const b = await join_(homeB, '{"gpu":1}');
    await join_(homeC, '{"slot":1}');
    await join_(homeD, '{"slot":1}');
    await until(async () => (await statusOf(homeA)).length === 4, 'four nodes in the cluster');

    // 1 GB put on A, checksummed by two concurrent tasks on B: one pull, the right bytes.
    const transfer = await driver<{ local: string; first: { hash: string; length: number; ppid: number }; second: { hash: string; ppid: number } }>(
      homeA,
      a.head,
      ['transfer', String(1024 ** 3)],
    );
    assert.equal(transfer.first.ppid, b.pid, 'the task ran on node B');
    assert.equal(transfer.second.ppid, b.pid);
    assert.equal(transfer.first.length, 1024 ** 3 / 8);
    assert.equal(transfer.first.hash, transfer.local, 'B read the very bytes A wrote');
    assert.equal(transfer.second.hash, transfer.local);
    await until(async () => ((await statusOf(homeA)).find((node) => node.pid === b.pid)?.pulls ?? 0) > 0, 'B to report its pull');
    const pulled = (await statusOf(homeA)).find((node) => node.pid === b.pid)!;
    assert.equal(pulled.pulls, 1, 'two tasks wanting the object at once pull it once');
    assert.ok(pulled.pulledBytes >= 1024 ** 3);

    // Results made on B come back to the driver on A, a ref B put inside one too.
    const results = await driver<{ length: number; last: number; innerLength: number; innerSum: number }>(homeA, a.head, ['results']);
    assert.deepEqual(results, { length: 1_000_000, last: 499_999.5, innerLength: 500_000, innerSum: 1_500_000 });

    // Two tasks for the two "slot" nodes, each of which must first pull the argument: one each
    // (a node still pulling for a task it was given does not look free to the head).
    const spread = await driver<number[]>(homeA, a.head, ['spread', String(256 * 1024 ** 2)]);
    assert.deepEqual([...spread].sort(), [daemonOf(homeC).pid, daemonOf(homeD).pid].sort());

    // Two results from B refer to the same object: it arrives once and stays until both go.
    assert.deepEqual(await driver(homeA, a.head, ['sameref']), { same: true, a: 4, b: 2_000_000 });

    // A resource no node offers: InfeasibleTaskError naming what each node offers.
    const infeasible = await driver<{ error: string; message: string }>(homeA, a.head, ['infeasible']);
    assert.equal(infeasible.error, 'InfeasibleTaskError');
    assert.match(infeasible.message, /tpu 1[\s\S]*gpu 1/);

    // A program on a machine without a node (a SHOAL_HOME with no daemon) joins over the network
    // through the head's node: its objects travel as bytes, its tasks run anywhere.
    const remoteHome = mkdtempSync(join(tmpdir(), 'shoal-home-remote-'));
    homes.push(remoteHome);
    const joined = await driver<Record<string, unknown>>(remoteHome, a.head, ['remote'], { SHOAL_TOKEN: token });
    assert.deepEqual(joined, {
      sessionId: (await statusOf(homeA)).find((node) => node.pid === a.pid)!.nodeId,
      sum: 2_500_000,
      small: 2000,
      doubledLength: 5_000_000,
      doubledLast: 1,
      back: 5_000_000,
      onB: { length: 5_000_000, ppid: b.pid },
      getSync: 'ObjectNotFoundError',
      tooLarge: 'ERR_OBJECT_TOO_LARGE',
    });
    await assert.rejects(driver(remoteHome, a.head, ['remote'], { SHOAL_TOKEN: 'not-the-token' }), /refused the token/);
    assert.match(readFileSync(join(homeA, 'daemon.log'), 'utf8'), /refused a driver connection from .*: wrong or missing token/);

    // A ref made on node B, got by a driver on A: pulled from B. Once B is gone, a ref whose only
    // copy was there is an ObjectLostError.
    const holder = spawn(process.execPath, ['--import', 'tsx', DRIVER, a.head, 'hold'], { env: { ...process.env, SHOAL_HOME: homeB } });
    children.push(holder);
    const refsLine = await new Promise<string>((resolve, reject) => {
      let out = '';
      holder.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      holder.once('exit', (code) => reject(new Error(`the holding driver exited with ${code}`)));
    });
    const [firstRef, secondRef] = JSON.parse(refsLine) as unknown[];
    assert.deepEqual(await driver(homeA, a.head, ['get', JSON.stringify(firstRef)]), { sum: 200_000 });
    // A is busy with the first of two tasks on that object: the second goes to B, which holds it
    // (C and D have room too, but not the bytes).
    assert.deepEqual(await driver(homeA, a.head, ['locality', JSON.stringify(firstRef)]), { first: a.pid, second: b.pid, length: 200_000 });

    // The data server closes connections that send garbage or too much; it keeps serving.
    const dataUrl = (await statusOf(homeA)).find((node) => node.pid === b.pid)!.dataUrl;
    assert.equal(await closeCodeFor(dataUrl, [Buffer.from([0xc1, 0xff, 0x00])]), 4002);
    assert.equal(await closeCodeFor(dataUrl, [encodeMessage({ type: 'pull', requestId: 1, id: 'x'.repeat(21), window: 1 })]), 4001, 'no hello first');
    assert.ok([1009, 1006].includes(await closeCodeFor(dataUrl, [Buffer.alloc(2 << 20)])));
    process.kill(b.pid, 'SIGKILL');
    holder.kill('SIGKILL');
    await until(async () => (await statusOf(homeA)).length === 3, 'the head to drop node B');
    const lost = await driver<{ error: string; message: string }>(homeA, a.head, ['get', JSON.stringify(secondRef)]);
    assert.equal(lost.error, 'ObjectLostError', lost.message);
    assert.match(lost.message, /no node of the cluster holds it/);

    // The node running a task dies mid-task: the task runs again on the other node with "slot".
    const pidFile = join(homeA, 'running-on');
    const surviving = driver<{ ranOn: number }>(homeA, a.head, ['survive', pidFile]);
    await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').length > 0, 'the task to start');
    const victim = Number(readFileSync(pidFile, 'utf8'));
    assert.ok([daemonOf(homeC).pid, daemonOf(homeD).pid].includes(victim));
    process.kill(victim, 'SIGKILL');
    const { ranOn } = await surviving;
    assert.notEqual(ranOn, victim);
    assert.ok([daemonOf(homeC).pid, daemonOf(homeD).pid].includes(ranOn), 'it ran on the surviving slot node');
    assert.match(readFileSync(join(homeA, 'daemon.log'), 'utf8'), /placing it again/);

    // The killed node is started again: it rejoins.
    const victimHome = daemonOf(homeC).pid === victim ? homeC : homeD;
    const rejoined = await shoal(victimHome, ['start', '--address', a.head, '--token', token, '--num-cpus', '1', '--resources', '{"slot":1}']);
    assert.equal(rejoined.code, 0, rejoined.stderr);
    pids.push(daemonOf(victimHome).pid);
    await until(async () => (await statusOf(homeA)).some((node) => node.pid === daemonOf(victimHome).pid), 'the restarted node to rejoin');

    for (const home of [homeC, homeD, homeA]) {
      if (isAlive(daemonOf(home).pid)) assert.equal((await shoal(home, ['stop'])).code, 0);
    }
    assert.ok(!existsSync(dirname(a.address.slice(5))), 'stop removes the session directory');
  } finally {
    for (const child of children) child.kill('SIGKILL');
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await until(() => pids.every((pid) => !isAlive(pid)), 'the daemons to be gone');
    sweepStaleSessions('/dev/shm');
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  }
});
