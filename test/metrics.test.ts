// Prometheus metrics (issue "See inside a running cluster"): the head's /metrics (the cluster as
// its nodes report it) and each node's (its data port: tasks by function, histograms, transfers),
// in Prometheus's text format, behind the cluster token, moving as tasks run.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runProgram } from './cluster-helpers.js';
import { until } from './runtime-helpers.js';
import { parsePrometheusText, type PrometheusSample } from './support/prometheus-text.js';
import { startCluster } from './support/start-cluster.js';

const DRIVER = fileURLToPath(new URL('./fixtures/diagnostics-driver.ts', import.meta.url));

/** GETs `url` with `headers`; the status, content type and body. */
async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(url, { headers, redirect: 'manual' });
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() };
}

/** Sends `GET target` by hand (fetch would normalise it); resolves with the answer's first line. */
function rawRequest(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
  });
}

/** Scrapes `url` with the token and parses it (which throws on anything but the text format). */
async function scrape(url: string, token: string): Promise<PrometheusSample[]> {
  const answer = await get(url, { authorization: `Bearer ${token}` });
  assert.equal(answer.status, 200, answer.body);
  assert.match(answer.type, /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(answer.body);
}

/** The value of the sample `name` whose labels include `labels` (a histogram's count is `NAME_count`). */
function valueOf(samples: readonly PrometheusSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))?.value;
}

test('the head and each node serve /metrics in the text format, behind the token, and they move as tasks run', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ nodes: [{}, { resources: { gpu: 1 } }] });
  const [driverNode, gpuNode] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
  const head = `${cluster.url.replace(/^ws/, 'http')}/metrics`;
  const nodeMetrics = (member: typeof driverNode) => `${member.dataUrl.replace(/^ws/, 'http')}/metrics`;

  // Every route refuses a missing or wrong token, in every form.
  const base = cluster.url.replace(/^ws/, 'http');
  for (const url of [head, nodeMetrics(driverNode), `${nodeMetrics(driverNode).replace('/metrics', '/api/tasks')}`, `${nodeMetrics(driverNode).replace('/metrics', '/api/objects')}`, `${base}/`, `${base}/api/status`, `${base}/api/tasks`, `${base}/api/objects`, `${base}/api/actors`]) {
    assert.equal((await get(url)).status, 401, `${url} without a token`);
    assert.equal((await get(url, { authorization: 'Bearer wrong-token' })).status, 401, `${url} with a wrong token`);
    assert.equal((await get(`${url}?token=wrong-token`)).status, 401, `${url} with a wrong token in the query`);
    assert.equal((await get(url, { cookie: 'shoal_token=wrong-token' })).status, 401, `${url} with a wrong cookie`);
  }
  // The token in the query sets the cookie and sends the browser on without it.
  const opened = await fetch(`${head}?token=${cluster.token}`, { redirect: 'manual' });
  assert.equal(opened.status, 303);
  assert.equal(opened.headers.get('location'), '/metrics');
  const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
  assert.equal((await get(head, { cookie })).status, 200, 'the cookie opens the route');
  // Other paths answer as before; a POST is refused.
  assert.equal((await get(`${cluster.url.replace(/^ws/, 'http')}/elsewhere`)).status, 426);
  assert.equal((await get(`${nodeMetrics(driverNode).replace('/metrics', '/')}`)).status, 426);
  assert.equal((await fetch(head, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}` } })).status, 405);

  // A request the URL parser refuses (Node's HTTP parser takes it) is answered, not a crash.
  for (const port of [new URL(cluster.url).port, new URL(driverNode.dataUrl).port]) {
    for (const target of ['//', 'http://[/', '/%zz?token=%']) assert.match(await rawRequest(Number(port), target), /^HTTP\/1\.1 (400|401|426) /, `GET ${target}`);
  }
  const before = await scrape(nodeMetrics(gpuNode), cluster.token);
  assert.equal(valueOf(before, 'shoal_tasks_started_total', { function: 'anonymous' }), undefined, 'no task ran on the gpu node yet');

  const run = await runProgram(DRIVER, [driverNode.address, 'shoal-test-child'], {});
  assert.equal(run.code, 0, run.stderr);

  // The driver's node: the gpu task was submitted here (its run and end are the gpu node's, where
  // it ran); the failing one ran and failed here; the result was pulled back. Each task is
  // counted once across the cluster.
  const driverSide = await scrape(nodeMetrics(driverNode), cluster.token);
  assert.equal(valueOf(driverSide, 'shoal_tasks_submitted_total', { function: 'anonymous', node: driverNode.nodeId }), 1);
  assert.equal(valueOf(driverSide, 'shoal_tasks_finished_total', { function: 'anonymous' }), 0);
  assert.equal(valueOf(driverSide, 'shoal_tasks_started_total', { function: 'failsOnPurpose' }), 1);
  assert.equal(valueOf(driverSide, 'shoal_tasks_failed_total', { function: 'failsOnPurpose' }), 1);
  assert.equal(valueOf(driverSide, 'shoal_task_queue_seconds_count', { function: 'failsOnPurpose' }), 1, 'one queue wait observed');
  assert.equal(valueOf(driverSide, 'shoal_task_run_seconds_count', { function: 'failsOnPurpose' }), 1, 'one run observed');
  assert.ok(valueOf(driverSide, 'shoal_pulls_total')! >= 1, 'the result was pulled');
  assert.equal(valueOf(driverSide, 'shoal_resources_total', { resource: 'CPU' }), 1);
  // The gpu node ran the task and pulled the array (2 MiB) for it.
  const gpuSide = await scrape(nodeMetrics(gpuNode), cluster.token);
  assert.equal(valueOf(gpuSide, 'shoal_tasks_submitted_total', { function: 'anonymous' }), 0, 'counted where it was submitted');
  assert.equal(valueOf(gpuSide, 'shoal_tasks_started_total', { function: 'anonymous' }), 1);
  assert.equal(valueOf(gpuSide, 'shoal_tasks_finished_total', { function: 'anonymous' }), 1);
  assert.ok(valueOf(gpuSide, 'shoal_pulled_bytes_total')! >= 2 * 2 ** 20);
  assert.ok(valueOf(gpuSide, 'shoal_pull_seconds_count')! >= 1);
  assert.ok(valueOf(gpuSide, 'shoal_workers')! >= 1);
  assert.equal(valueOf(gpuSide, 'shoal_resources_total', { resource: 'gpu' }), 1);

  // The head: both members, with their resources as reported.
  await until(async () => valueOf(await scrape(head, cluster.token), 'shoal_node_store_capacity_bytes', { node: gpuNode.nodeId })! > 0, 'the gpu node to report');
  const cluster_ = await scrape(head, cluster.token);
  assert.equal(valueOf(cluster_, 'shoal_cluster_nodes'), 2);
  assert.equal(valueOf(cluster_, 'shoal_node_resources_total', { node: gpuNode.nodeId, resource: 'gpu' }), 1);
  const status = JSON.parse((await get(`${cluster.url.replace(/^ws/, 'http')}/api/status`, { authorization: `Bearer ${cluster.token}` })).body) as { nodes: { nodeId: string }[] };
  assert.deepEqual(status.nodes.map((node) => node.nodeId).sort(), [driverNode.nodeId, gpuNode.nodeId].sort());
});
