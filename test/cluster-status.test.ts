// `shoal status` on a joined node's machine finds the cluster and its token without being told.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI, daemonOf, runProgram, shoal, withHomes } from './cluster-helpers.js';
import { freePort } from './helpers.js';
import { sleep, until } from './runtime-helpers.js';

const DRIVER = fileURLToPath(new URL('./fixtures/spill-driver.ts', import.meta.url));
const MEMORY_DRIVER = fileURLToPath(new URL('./fixtures/memory-driver.ts', import.meta.url));
const LOGS_DRIVER = fileURLToPath(new URL('./fixtures/logs-driver.ts', import.meta.url));

/** A head daemon in `homeA` and a node daemon joining it from `homeB` (their pids go in `pids`). */
async function headAndJoinedNode(homeA: string, homeB: string, pids: number[]): Promise<{ head: ReturnType<typeof daemonOf>; node: ReturnType<typeof daemonOf>; token: string }> {
  const noToken = { SHOAL_TOKEN: '', SHOAL_ADDRESS: '' };
  const started = await shoal(homeA, ['start', '--head', '--port', '0', '--num-cpus', '1'], noToken);
  assert.equal(started.code, 0, started.stderr);
  const head = daemonOf(homeA);
  pids.push(head.pid);
  const token = readFileSync(join(homeA, 'token'), 'utf8').trim();
  const joined = await shoal(homeB, ['start', '--address', head.head, '--token', token, '--num-cpus', '1'], noToken);
  assert.equal(joined.code, 0, joined.stderr);
  const node = daemonOf(homeB);
  pids.push(node.pid);
  return { head, node, token };
}

test("`shoal status` on a joined node's machine works without --token", { timeout: 120_000 }, async () => {
  const noToken = { SHOAL_TOKEN: '', SHOAL_ADDRESS: '' };
  await withHomes(2, async ([homeA, homeB], pids) => {
    const { head, node, token } = await headAndJoinedNode(homeA!, homeB!, pids);

    const status = await shoal(homeB!, ['status', '--json'], noToken);
    assert.equal(status.code, 0, status.stderr);
    const pidsSeen = (JSON.parse(status.stdout) as { nodes: { pid: number }[] }).nodes.map((member) => member.pid).sort();
    assert.deepEqual(pidsSeen, [head.pid, node.pid].sort());
    assert.equal(readFileSync(join(homeB!, 'joined-token'), 'utf8').trim(), token);
    // `shoal dashboard` prints the page with the token, and every /metrics; they answer.
    const where = await shoal(homeB!, ['dashboard'], noToken);
    assert.equal(where.code, 0, where.stderr);
    const page = /^Dashboard: (http:\/\/\S+)$/m.exec(where.stdout)![1]!;
    assert.equal(new URL(page).searchParams.get('token'), token);
    const opened = await fetch(page, { redirect: 'manual' });
    assert.equal(opened.status, 303);
    const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
    const shown = await fetch(new URL(opened.headers.get('location')!, page), { headers: { cookie } });
    assert.equal(shown.status, 200, 'the redirect, with its cookie, lands on the page');
    assert.match(await shown.text(), /<title>Shoal<\/title>/);
    const metrics = [...where.stdout.matchAll(/(http:\/\/\S+\/metrics)/g)].map((match) => match[1]!);
    assert.equal(metrics.length, 3, 'the head and both nodes');
    for (const url of metrics) assert.equal((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status, 200, url);
    assert.equal(statSync(join(homeB!, 'joined-token')).mode & 0o777, 0o600, "the joined node's token is private");
    assert.ok(!existsSync(join(homeB!, 'token')), 'it is kept apart from a head token');
  });
});

test('`shoal memory` lists an object a driver on another node put, with that node and the driver as its holder', { timeout: 120_000 }, async () => {
  const noToken = { SHOAL_TOKEN: '', SHOAL_ADDRESS: '' };
  await withHomes(2, async ([homeA, homeB], pids) => {
    const { node } = await headAndJoinedNode(homeA!, homeB!, pids);
    const driver = spawn(process.execPath, ['--import', 'tsx', MEMORY_DRIVER, node.address, 'shoal-test-child'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        driver.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString()));
        driver.once('exit', (code) => reject(new Error(`the driver exited (${code}) before it put its objects`)));
      });
      const made = JSON.parse(line) as { big: string; named: string; pid: number };
      const listed = await shoal(homeA!, ['memory', '--json'], noToken);
      assert.equal(listed.code, 0, listed.stderr);
      const { objects } = JSON.parse(listed.stdout) as { objects: { id: string; size: number; nodes: string[]; names: string[]; holders: { pid: number; kind: string; node: string }[] }[] };
      const big = objects.find((object) => object.id === made.big);
      assert.ok(big, `the driver's array is listed: ${listed.stdout}`);
      assert.ok(big.size >= 3_000_000);
      assert.deepEqual(big.nodes, [node.nodeId], 'on the node the driver is attached to');
      assert.deepEqual(big.holders, [{ node: node.nodeId, pid: made.pid, kind: 'program', refs: 1 }], 'held by the driver');
      assert.deepEqual(objects.find((object) => object.id === made.named)?.names, ['settings']);
      assert.equal(objects[0]!.id, made.big, 'largest first');
      // The table says the same, with the totals.
      const table = await shoal(homeA!, ['memory'], noToken);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, new RegExp(`^${made.big}\\s+3\\.0 MB\\s+object\\s+${node.nodeId}\\s+program ${made.pid}@${node.nodeId}$`, 'm'));
      assert.match(table.stdout, /named settings/);
      assert.match(table.stdout, /^\d+ object\(s\), \d/m);
    } finally {
      driver.stdin.end();
      if (driver.exitCode === null) await new Promise((resolve) => driver.once('exit', resolve));
    }
  });
});

/** The JSON objects of log lines, each checked to be one of pino's: level, time, pid, component, msg. */
function logEntries(text: string): { level: number; time: number; pid: number; component: string; msg: string }[] {
  const lines = text.trimEnd().split('\n');
  return lines.map((line) => {
    const entry = JSON.parse(line) as { level: number; time: number; pid: number; component: string; msg: string };
    assert.equal(typeof entry.level, 'number', line);
    assert.equal(typeof entry.time, 'number', line);
    assert.equal(typeof entry.pid, 'number', line);
    assert.equal(typeof entry.component, 'string', line);
    assert.equal(typeof entry.msg, 'string', line);
    return entry;
  });
}

test("`shoal logs` prints a daemon's log as JSON lines when not a terminal (its head's, its node's and its workers'), another node's through the head, and follows it", { timeout: 120_000 }, async () => {
  const noToken = { SHOAL_TOKEN: '', SHOAL_ADDRESS: '' };
  await withHomes(2, async ([homeA, homeB], pids) => {
    const { head, node, token } = await headAndJoinedNode(homeA!, homeB!, pids);
    const own = await shoal(homeA!, ['logs'], noToken);
    assert.equal(own.code, 0, own.stderr);
    const entries = logEntries(own.stdout);
    assert.ok(entries.some((entry) => entry.component === 'daemon' && entry.pid === head.pid && entry.msg === `head listening on ${head.head}`), own.stdout);
    assert.ok(entries.some((entry) => entry.component === 'head' && entry.msg.startsWith(`node ${node.nodeId} joined`)), 'the head logs the node joining');

    // The joined node's log, followed from the head's machine while a task's worker logs there.
    const follow = spawn(process.execPath, [CLI, 'logs', '--node', node.nodeId, '--follow', '--lines', '0'], { env: { ...process.env, SHOAL_HOME: homeA!, ...noToken }, stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follow.stdout.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    try {
      const run = await runProgram(LOGS_DRIVER, [node.address, 'shoal-test-child'], {});
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), '1');
      await until(() => followed.includes('left unhandled on purpose'), 'the followed log to show the worker line');
      const worker = logEntries(followed).find((entry) => entry.component === 'worker')!;
      assert.equal(worker.msg, 'unhandled rejection in a task: left unhandled on purpose');
      assert.notEqual(worker.pid, node.pid, "a worker's own pid");
    } finally {
      follow.kill();
    }
    const last = await shoal(homeA!, ['logs', '--node', node.nodeId, '--lines', '3'], noToken);
    assert.equal(last.code, 0, last.stderr);
    assert.equal(logEntries(last.stdout).length, 3, '--lines 3');
    const pretty = await shoal(homeB!, ['logs', '--pretty'], noToken);
    assert.equal(pretty.code, 0, pretty.stderr);
    assert.match(pretty.stdout, new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\d [\\d:.]+\\] INFO \\(${node.pid}\\): daemon: node ${node.nodeId} serving at `, 'm'));
    assert.doesNotMatch(pretty.stdout, /^\{/m, 'no JSON line');

    const unknown = await shoal(homeA!, ['logs', '--node', 'no-such-node'], noToken);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, new RegExp(`no node "no-such-node" in the cluster \\(its members: .*${node.nodeId} on `));
    const dataUrl = (JSON.parse((await shoal(homeA!, ['status', '--json'], noToken)).stdout) as { nodes: { nodeId: string; dataUrl: string }[] }).nodes.find((member) => member.nodeId === node.nodeId)!.dataUrl;
    for (const url of [`${head.head.replace(/^ws/, 'http')}/api/logs?node=${node.nodeId}`, `${dataUrl.replace(/^ws/, 'http')}/api/logs`]) {
      assert.equal((await fetch(url)).status, 401, `${url} without a token`);
      assert.equal((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status, 401, `${url} with a wrong token`);
      assert.equal((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status, 200, `${url} with the token`);
    }
  });
});

test("joining with a mistyped token on a head's machine leaves the head's token alone", { timeout: 120_000 }, async () => {
  const noToken = { SHOAL_TOKEN: '', SHOAL_ADDRESS: '' };
  await withHomes(2, async ([homeA, homeC], pids) => {
    const first = await shoal(homeA!, ['start', '--head', '--port', '0', '--num-cpus', '1'], noToken);
    assert.equal(first.code, 0, first.stderr);
    pids.push(daemonOf(homeA!).pid);
    const token = readFileSync(join(homeA!, 'token'), 'utf8').trim();
    assert.equal((await shoal(homeA!, ['stop'])).code, 0);

    // Another cluster's head, which refuses the typo.
    const other = await shoal(homeC!, ['start', '--head', '--port', '0', '--num-cpus', '1'], noToken);
    assert.equal(other.code, 0, other.stderr);
    pids.push(daemonOf(homeC!).pid);
    const typo = await shoal(homeA!, ['start', '--address', daemonOf(homeC!).head, '--token', 'not-the-token', '--num-cpus', '1'], noToken);
    assert.notEqual(typo.code, 0, 'the join fails');
    assert.ok(!existsSync(join(homeA!, 'joined-token')), 'a token the head did not take is not kept');

    const again = await shoal(homeA!, ['start', '--head', '--port', '0', '--num-cpus', '1'], noToken);
    assert.equal(again.code, 0, again.stderr);
    pids.push(daemonOf(homeA!).pid);
    assert.equal(readFileSync(join(homeA!, 'token'), 'utf8').trim(), token, 'the head started again with its own token');
  });
});

test('a daemon whose store is full spills: an attached driver puts 4x its memory (store.makeRoom first), tasks read it all back, `shoal status` shows the spills; `shoal stop` removes the spill directory', { timeout: 120_000 }, async () => {
  await withHomes(1, async ([home], pids) => {
    const spillRoot = join(home!, 'spill');
    const started = await shoal(home!, ['start', '--head', '--port', '0', '--num-cpus', '2', '--object-store-memory', String(64 * 2 ** 20), '--spill-directory', spillRoot]);
    assert.equal(started.code, 0, started.stderr);
    const daemon = daemonOf(home!);
    pids.push(daemon.pid);
    const driver = await runProgram(DRIVER, [daemon.head, '16', '16', 'shoal-test-child'], { SHOAL_HOME: home! });
    assert.equal(driver.code, 0, driver.stderr);
    assert.deepEqual(JSON.parse(driver.stdout), { attached: true, sums: Array.from({ length: 16 }, (_, i) => 2 * (i + 1)) });

    // The head shows what the node's reports said: the last one after the driver's end may be on its way.
    type Spill = { spills: number; restores: number; spillBytesTotal: number };
    let spill: Spill | undefined;
    const reported = async () => {
      const status = await shoal(home!, ['status', '--json']);
      assert.equal(status.code, 0, status.stderr);
      spill = (JSON.parse(status.stdout) as { nodes: { spill: Spill }[] }).nodes[0]!.spill;
      return spill.spills >= 12 && spill.spillBytesTotal >= 12 * 16 * 2 ** 20 && spill.restores >= 1;
    };
    await until(reported, 'the node to report that it spilled most of 256 MiB and read spilled objects back').catch((error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(spill)}`);
    });
    const text = await shoal(home!, ['status']);
    assert.match(text.stdout, /spilled \d+ \(\d+\.\d+ GB, \d+\.\d+ GB\/s\), restored \d+ \(\d+\.\d+ GB/);
    assert.ok(readdirSync(spillRoot).some((name) => name.startsWith('shoal-')), 'its session spill directory is under the root');

    assert.equal((await shoal(home!, ['stop'])).code, 0);
    assert.deepEqual(readdirSync(spillRoot), [], 'stopping the daemon removes its spill directory');
  });
});

test('`shoal health` says whether the daemon answers and, with --ready, whether the head counts it; sizes take suffixes', { timeout: 120_000 }, async () => {
  await withHomes(2, async ([homeA, homeB], pids) => {
    const none = await shoal(homeA!, ['health']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /unhealthy: no Shoal daemon runs for /);
    const badSize = await shoal(homeA!, ['start', '--head', '--port', '0', '--object-store-memory', '2Zi']);
    assert.equal(badSize.code, 2);
    assert.match(badSize.stderr, /expected --object-store-memory to be a size in bytes, or with a suffix \(3Gi, 512Mi, 4G\), got 2Zi/);

    const started = await shoal(homeA!, ['start', '--head', '--port', '0', '--num-cpus', '1', '--object-store-memory', '96Mi']);
    assert.equal(started.code, 0, started.stderr);
    const head = daemonOf(homeA!);
    pids.push(head.pid);
    const token = readFileSync(join(homeA!, 'token'), 'utf8').trim();
    const joined = await shoal(homeB!, ['start', '--address', head.head, '--token', token, '--num-cpus', '1', '--object-store-memory', '0.1G']);
    assert.equal(joined.code, 0, joined.stderr);
    const node = daemonOf(homeB!);
    pids.push(node.pid);
    const status = JSON.parse((await shoal(homeA!, ['status', '--json'])).stdout) as { nodes: { pid: number; capacityBytes: number }[] };
    const capacity = (pid: number) => status.nodes.find((member) => member.pid === pid)?.capacityBytes;
    assert.equal(capacity(head.pid), 96 * 2 ** 20, '96Mi is binary');
    assert.equal(capacity(node.pid), 100_000_000, '0.1G is decimal');

    for (const home of [homeA!, homeB!]) {
      const live = await shoal(home, ['health']);
      assert.equal(live.code, 0, live.stderr);
      assert.match(live.stdout, /^healthy: node \S+ \(pid \d+\) answers at unix:/);
      const ready = await shoal(home, ['health', '--ready']);
      assert.equal(ready.code, 0, ready.stderr);
      assert.match(ready.stdout, /a member of cluster \S+ at ws:\/\/127\.0\.0\.1:\d+ \(2 node\(s\)\)/);
    }

    // A stopped (hung) node accepts the connection in the kernel but never answers.
    process.kill(node.pid, 'SIGSTOP');
    try {
      const hung = await shoal(homeB!, ['health', '--timeout-ms', '1000']);
      assert.equal(hung.code, 1);
      assert.match(hung.stderr, /unhealthy: node \S+ \(pid \d+\) at unix:\S+: did not welcome an attached client within 1000 ms/);
    } finally {
      process.kill(node.pid, 'SIGCONT');
    }

    // Without its head the node lives on (alive), but is not ready.
    assert.equal((await shoal(homeA!, ['stop'])).code, 0);
    const alone = await shoal(homeB!, ['health', '--ready', '--timeout-ms', '2000']);
    assert.equal(alone.code, 1);
    assert.match(alone.stderr, /not ready: the head at ws:\/\/127\.0\.0\.1:\d+: /);
    assert.equal((await shoal(homeB!, ['health'])).code, 0, 'but alive: liveness does not depend on the head');
  });
});

test('a node started before its head waits for it with --join-timeout, and fails at once without', { timeout: 120_000 }, async () => {
  await withHomes(2, async ([homeA, homeB], pids) => {
    const port = await freePort();
    const token = 'a-token-for-this-test-0123456789';
    const address = `ws://127.0.0.1:${port}`;
    const hasty = await shoal(homeB!, ['start', '--address', address, '--token', token, '--num-cpus', '1']);
    assert.equal(hasty.code, 1, 'no head: the join fails at once');
    assert.match(hasty.stderr, /exited|could not start/);

    const joining = shoal(homeB!, ['start', '--address', address, '--token', token, '--num-cpus', '1', '--join-timeout', '60']);
    await sleep(1500);
    const head = await shoal(homeA!, ['start', '--head', '--port', String(port), '--num-cpus', '1', '--token', token]);
    assert.equal(head.code, 0, head.stderr);
    pids.push(daemonOf(homeA!).pid);
    const joined = await joining;
    assert.equal(joined.code, 0, joined.stderr);
    pids.push(daemonOf(homeB!).pid);
    assert.equal((await shoal(homeB!, ['health', '--ready'])).code, 0, 'it joined once the head came up');
  });
});
