// Actors across the nodes of a cluster (test/support/start-cluster.ts: a head and three nodes in
// this process, each with its own shm root, so everything crosses WebSocket): an actor that fits
// no resource of its creator's node is placed by the head on one that does; calls from its
// creator and from another node go straight to that node, in order, with refs both ways; a
// named actor is found from another node; an owned actor dies with its creator across nodes; an
// actor whose node dies restarts on another (state reset) within maxRestarts; kill from another
// node. Drivers are child processes (test/fixtures/cluster-actors.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runProgram } from './cluster-helpers.js';
import { until } from './runtime-helpers.js';
import { startCluster, type ClusterMember } from './support/start-cluster.js';

const DRIVER = fileURLToPath(new URL('./fixtures/cluster-actors.ts', import.meta.url));

async function drive<T>(member: ClusterMember, mode: string, name = ''): Promise<T> {
  const run = await runProgram(DRIVER, [member.address, mode, name], {});
  assert.equal(run.code, 0, `driver ${mode} exited with ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

interface Failure {
  readonly error?: { readonly name: string; readonly kind?: string; readonly message: string };
}

test('actors across nodes: placed where they fit, called from any node in order, found by name, restarted when their node dies, killed', { timeout: 240_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{ numCpus: 1 }, { numCpus: 1, resources: { gpu: 1 } }, { numCpus: 1, resources: { gpu: 1 } }] });
  const [a, ...gpus] = cluster.nodes as [ClusterMember, ClusterMember, ClusterMember];
  const byId = (nodeId: string) => {
    const member = gpus.find((candidate) => candidate.nodeId === nodeId);
    assert.ok(member, `the actor ran on a node with a gpu (it ran on ${nodeId})`);
    return member;
  };

  // An owned actor placed on another node dies there when its creator exits.
  const owned = await drive<{ node: string }>(a, 'owned');
  const ownedHost = byId(owned.node);
  await until(() => ownedHost.node.actorPids().length === 0, "the owned actor's process to go once its creator exited");

  // A detached, named one: calls from its creator's node run in order, refs go both ways.
  const created = await drive<{ counts: number[]; sum: number; big: { length: number; first: number; last: number }; node: string }>(a, 'create', 'ctr');
  assert.deepEqual(created.counts, [1, 2, 3, 4], 'calls ran in the order they were made');
  assert.equal(created.sum, 200_000 + 50_000, 'the call read the ref argument from A, the constructor the one it was made with');
  assert.deepEqual(created.big, { length: 300_000, first: 4, last: 4 }, 'a segment result came back from the actor node');
  const host = byId(created.node);
  const other = gpus.find((member) => member !== host)!;
  assert.equal(host.node.actorPids().length, 1);

  // Found by name from another node, and called there: same instance, same state.
  assert.deepEqual(await drive(other, 'use', 'ctr'), { count: 5, node: host.nodeId });
  assert.deepEqual(await drive(a, 'use', 'ctr'), { count: 6, node: host.nodeId });
  // A handle passed to a task that runs on another node works there.
  assert.deepEqual(await drive(a, 'task', 'ctr'), { count: 7, taskNode: other.nodeId, actorNode: host.nodeId });
  assert.deepEqual(await drive<Failure>(other, 'use', 'nobody'), { error: { name: 'ActorNotFoundError', message: (await drive<Failure>(other, 'use', 'nobody')).error!.message } });

  // Its node dies: the head restarts it on the other gpu node, with its state reset.
  await host.kill();
  assert.deepEqual(await drive(a, 'use', 'ctr'), { count: 1, node: other.nodeId }, 'restarted on the other node, state reset');
  assert.ok(cluster.log.some((line) => /actor Counter .* restarting it elsewhere \(restart 1 of 1\)/.test(line)), 'the head logged the restart');

  // Killed from a node it does not run on: the next call fails saying so, and its process goes.
  const killed = await drive<Failure>(a, 'kill', 'ctr');
  assert.equal(killed.error?.name, 'ActorDiedError');
  assert.equal(killed.error?.kind, 'killed');
  await until(() => other.node.actorPids().length === 0, "the killed actor's process to go");
  assert.equal((await drive<Failure>(a, 'use', 'ctr')).error?.name, 'ActorNotFoundError', 'a dead actor is not found by name');
});

test('an actor whose node dies with no restart left: the call in flight and every later one fail saying its node left; a streaming method from another node fails saying it is not supported', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{ numCpus: 1 }, { numCpus: 1, resources: { gpu: 1 } }] });
  const [a, b] = cluster.nodes as [ClusterMember, ClusterMember];
  const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, a.address, 'outlive', 'solo'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = JSON.parse((await lines.next()).value as string) as { node: string; streamed: { name: string; message: string } };
    assert.equal(first.node, b.nodeId);
    assert.equal(first.streamed.name, 'TaskError');
    assert.match(first.streamed.message, /Counter\.numbers failed: Error: it streams \(an async generator\), and streaming from an actor on another node is not supported yet/);
    await until(() => b.node.actorPids().length === 1, 'the actor to run on B');
    await b.kill();
    child.stdin.write('go\n');
    const second = JSON.parse((await lines.next()).value as string) as Record<string, Failure>;
    for (const call of ['inFlight', 'later']) {
      assert.equal(second[call]!.error?.name, 'ActorDiedError', call);
      assert.equal(second[call]!.error?.kind, 'node-died', call);
      assert.match(second[call]!.error!.message, new RegExp(`Actor Counter is dead: the node it ran on \\(${b.nodeId}\\) left the cluster`), call);
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
});

test("a blip in a node's connection to the head leaves its actors as they are: same process, same state", { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ relayHeadLinks: true, nodes: [{ numCpus: 1 }, { numCpus: 1, resources: { gpu: 1 } }] });
  const [a, b] = cluster.nodes as [ClusterMember, ClusterMember];
  const created = await drive<{ counts: number[]; node: string }>(a, 'create', 'steady');
  assert.equal(created.node, b.nodeId);
  const [pid] = b.node.actorPids();
  const rejoined = () => cluster.head.nodes().length === 2;
  cluster.cutHeadLinks();
  await until(() => !rejoined(), 'the head to see the nodes go');
  await until(rejoined, 'both nodes to register again');
  assert.deepEqual(await drive(a, 'use', 'steady'), { count: 5, node: b.nodeId }, 'the same instance, its state kept');
  assert.deepEqual(b.node.actorPids(), [pid], 'its process was not replaced');
  // Past the grace the head gives a node that dropped, nothing changed either.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  assert.deepEqual(await drive(a, 'use', 'steady'), { count: 6, node: b.nodeId });
  assert.deepEqual(b.node.actorPids(), [pid]);
});
