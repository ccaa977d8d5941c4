// `shoal timeline` (issue "See inside a running cluster"): every node keeps its last task runs and
// pulls; the head merges them into a Chrome trace, behind the cluster token.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Timeline } from '@shoal/runtime';
import type { ClusterTimeline, TraceEvent } from '@shoal/runtime/cluster';
import { runProgram, shoal } from './cluster-helpers.js';
import { startCluster } from './support/start-cluster.js';

const DRIVER = fileURLToPath(new URL('./fixtures/diagnostics-driver.ts', import.meta.url));
const RETRY_DRIVER = fileURLToPath(new URL('./fixtures/retry-driver.ts', import.meta.url));

test('a timeline keeps its last spans, oldest first, and gives those that ended since a time', () => {
  const timeline = new Timeline(3);
  const began = performance.now();
  for (let i = 0; i < 5; i++) timeline.taskRan(`f${i}`, `id${i}`, 100 + i, began, i === 4);
  timeline.pulled('obj', 4096, 'ws://10.0.0.2:7001', began);
  const spans = timeline.since();
  assert.deepEqual(spans.map((span) => span.name), ['f3', 'f4', 'pull'], 'the oldest went first');
  assert.deepEqual(spans.map((span) => span.failed), [false, true, false]);
  assert.deepEqual({ ...spans[2], start: 0, duration: 0 }, { kind: 'pull', name: 'pull', id: 'obj', start: 0, duration: 0, pid: 0, failed: false, bytes: 4096, from: 'ws://10.0.0.2:7001' });
  assert.ok(Math.abs(spans[0]!.start - (performance.timeOrigin + began)) < 1, 'in milliseconds since the epoch');
  assert.equal(timeline.since(Date.now() + 60_000).length, 0, 'nothing ended in the future');
  assert.throws(() => new Timeline(0), /positive integer, got 0/);
});

test('`shoal timeline` writes a Chrome trace with one span per task run on its worker and the pulls on their nodes, behind the token', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  const [driverNode, gpuNode] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
  const head = cluster.url.replace(/^ws/, 'http');
  for (const url of [`${head}/api/timeline`, `${driverNode.dataUrl.replace(/^ws/, 'http')}/api/timeline`]) {
    assert.equal((await fetch(url)).status, 401, `${url} without a token`);
    assert.equal((await fetch(url, { headers: { authorization: 'Bearer wrong-token' } })).status, 401, `${url} with a wrong token`);
  }

  const began = Date.now();
  const run = await runProgram(DRIVER, [driverNode.address, 'shoal-test-child'], {});
  assert.equal(run.code, 0, run.stderr);
  const ended = Date.now();

  const home = mkdtempSync(join(tmpdir(), 'shoal-timeline-'));
  try {
    const target = ['--address', cluster.url, '--token', cluster.token];
    const file = join(home, 'trace.json');
    const written = await shoal(home, ['timeline', ...target, '--minutes', '10', '-o', file]);
    assert.equal(written.code, 0, written.stderr);
    assert.match(written.stdout, new RegExp(`^wrote 2 task run\\(s\\) and \\d+ pull\\(s\\) of 2 node\\(s\\) from the last 10 minute\\(s\\) to ${file.replace(/[.]/g, '\\.')}$`, 'm'));
    const trace = JSON.parse(readFileSync(file, 'utf8')) as ClusterTimeline;
    assert.equal(trace.displayTimeUnit, 'ms');
    const spans = trace.traceEvents.filter((event) => event.ph === 'X');
    const meta = (name: string, pid: number, tid: number) => trace.traceEvents.find((event) => event.ph === 'M' && event.name === name && event.pid === pid && event.tid === tid)?.args.name;
    const nodeOf = (event: TraceEvent) => String(meta('process_name', event.pid, 0));
    for (const span of spans) {
      assert.ok(span.ts >= began * 1000 - 1000 && span.ts <= ended * 1000, `${span.name} starts within the driver's run, in µs since the epoch`);
      assert.ok(span.dur! >= 1 && span.ts + span.dur! <= ended * 1000 + 1000, `${span.name} ends within it`);
    }
    // One span per task run, on a row of the worker it ran in, on the node it ran on.
    const tasks = spans.filter((event) => event.cat!.startsWith('task'));
    assert.deepEqual(tasks.map((event) => event.name).sort(), ['anonymous', 'failsOnPurpose']);
    const onGpu = tasks.find((event) => event.name === 'anonymous')!;
    assert.match(nodeOf(onGpu), new RegExp(`^node ${gpuNode.nodeId} `));
    assert.ok(onGpu.tid > 0, 'a worker pid');
    assert.equal(meta('thread_name', onGpu.pid, onGpu.tid), `worker ${onGpu.tid}`);
    assert.deepEqual(onGpu.args, { returnId: JSON.parse(run.stdout.trim().split('\n').at(-1)!).result, failed: false });
    const failed = tasks.find((event) => event.name === 'failsOnPurpose')!;
    assert.match(nodeOf(failed), new RegExp(`^node ${driverNode.nodeId} `));
    assert.equal(failed.cat, 'task,failed');
    assert.equal(failed.args.failed, true);
    // The gpu node pulled the 2 MiB array; the driver's node pulled the result back.
    const pulls = spans.filter((event) => event.cat === 'pull');
    const pulledByGpu = pulls.find((event) => nodeOf(event).startsWith(`node ${gpuNode.nodeId} `));
    assert.ok(pulledByGpu && Number(pulledByGpu.args.bytes) >= 2 * 2 ** 20, JSON.stringify(pulls));
    assert.equal(pulledByGpu.tid, 0);
    assert.equal(meta('thread_name', pulledByGpu.pid, 0), 'pulls');
    assert.equal(pulledByGpu.args.from, driverNode.dataUrl);
    assert.ok(pulls.some((event) => nodeOf(event).startsWith(`node ${driverNode.nodeId} `)), 'the result was pulled back');

    // To stdout; nothing that ended after now; bad minutes are refused.
    const now = await shoal(home, ['timeline', ...target, '-o', '-']);
    assert.equal(now.code, 0, now.stderr);
    assert.equal((JSON.parse(now.stdout) as ClusterTimeline).otherData.tasks, 2, 'all the nodes kept by default');
    const future = await fetch(`${head}/api/timeline?since=${Date.now() + 60_000}`, { headers: { authorization: `Bearer ${cluster.token}` } });
    assert.equal(((await future.json()) as ClusterTimeline).traceEvents.filter((event) => event.ph === 'X').length, 0);
    const bad = await shoal(home, ['timeline', ...target, '--minutes', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected --minutes to be a number of minutes above 0, got soon/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('a task retried after its worker died has a span per run: the failed one on the dead worker, then the one that returned', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{}] });
  const home = mkdtempSync(join(tmpdir(), 'shoal-timeline-retry-'));
  try {
    const run = await runProgram(RETRY_DRIVER, [cluster.nodes[0]!.address, join(home, 'ran-once'), 'shoal-test-child'], {});
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'ran again');
    const answer = await fetch(`${cluster.url.replace(/^ws/, 'http')}/api/timeline`, { headers: { authorization: `Bearer ${cluster.token}` } });
    const runs = ((await answer.json()) as ClusterTimeline).traceEvents.filter((event) => event.ph === 'X' && event.name === 'crashesOnce');
    assert.deepEqual(runs.map((event) => event.args.failed), [true, false], 'the failed run first');
    assert.notEqual(runs[0]!.tid, runs[1]!.tid, 'each on its own worker');
    assert.equal(runs[0]!.args.returnId, runs[1]!.args.returnId, 'one task');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
