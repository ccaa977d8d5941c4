// Issue 18, finding 7 and the listener half of 1: connections that never authenticate cannot take
// a daemon's descriptors (budgets per source and in total, a handshake deadline), the daemon runs
// with its soft descriptor limit raised to the hard one and `shoal status` shows it, and browser
// origins are refused unless `shoal start --allowed-origin` allows them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sweepStaleSessions } from '@shoal/store';
import { WebSocket } from 'ws';
import { NodeManager } from '@shoal/runtime';
import { CLI, daemonOf, runProgram, shoal, type Run } from './cluster-helpers.js';
import { isAlive, until } from './runtime-helpers.js';

const DRIVER = fileURLToPath(new URL('fixtures/budget-driver.ts', import.meta.url));
const EXHAUST = fileURLToPath(new URL('fixtures/exhaust-descriptors.ts', import.meta.url));

/** `shoal <args>` under `ulimit` commands (`ulimit -Sn 512 && ulimit -Hn 1024`): the daemon it starts inherits them. */
function shoalLimited(home: string, limits: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', `${limits} && exec "$0" "$@"`, process.execPath, CLI, ...args],
      { env: { ...process.env, SHOAL_HOME: home, SHOAL_HEARTBEAT_TIMEOUT_MS: '1500', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface StatusNode {
  pid: number;
  dataUrl: string;
  openFiles?: number;
  fileLimit?: number;
}

async function statusNodes(home: string): Promise<StatusNode[]> {
  const run = await shoal(home, ['status', '--json']);
  assert.equal(run.code, 0, run.stderr);
  return (JSON.parse(run.stdout) as { nodes: StatusNode[] }).nodes;
}

/** The HTTP status a WebSocket upgrade with `origin` and the token of `home` gets (101 when it is accepted). */
function upgradeStatus(home: string, url: string, origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = { 'x-shoal-token': readFileSync(join(home, 'token'), 'utf8').trim() };
    const socket = new WebSocket(url, { perMessageDeflate: false, origin, headers });
    socket.once('open', () => {
      resolve(101);
      socket.terminate();
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', (error) => {
      if (socket.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

async function withDaemon(limits: string, args: string[], body: (home: string, pid: number) => Promise<void>): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'shoal-home-budget-'));
  let pid: number | undefined;
  try {
    const started = await shoalLimited(home, limits, ['start', '--head', '--port', '0', '--num-cpus', '2', ...args], { SHOAL_TOKEN: '' });
    assert.equal(started.code, 0, started.stderr);
    pid = daemonOf(home).pid;
    await body(home, pid);
  } finally {
    await shoal(home, ['stop']);
    if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
    if (pid !== undefined) await until(() => !isAlive(pid!), 'the daemon to be gone');
    sweepStaleSessions('/dev/shm');
    rmSync(home, { recursive: true, force: true });
  }
}

test('1,100 idle connections to the head and the data port leave a daemon under ulimit -n 1024 serving its tasks', { timeout: 180_000 }, async () => {
  // Soft 512, hard 1024: the daemon raises its soft limit to 1024 and reports it.
  await withDaemon('ulimit -Sn 512 && ulimit -Hn 1024', [], async (home) => {
    const head = daemonOf(home).head;
    const [node] = await statusNodes(home);
    assert.equal(node?.fileLimit, 1024, 'the soft limit is raised to the hard one, and `shoal status` shows it');
    const targets = [new URL(head), new URL(node.dataUrl)].map((url) => ({ host: url.hostname, port: Number(url.port) }));

    // Connections that send nothing, half to each listener, all held open by this end.
    const sockets: Socket[] = [];
    let closed = 0;
    await Promise.all(
      Array.from({ length: 1100 }, (_, i) => {
        const socket = connect(targets[i % 2]!);
        sockets.push(socket);
        socket.on('error', () => {});
        // Reads (and drops) what the daemon answers, so its FIN is seen.
        socket.resume();
        socket.once('close', () => (closed += 1));
        return new Promise<void>((resolve) => {
          socket.once('connect', () => resolve());
          socket.once('close', () => resolve());
        });
      }),
    );
    try {
      const driver = await runProgram(DRIVER, [head], { SHOAL_HOME: home });
      assert.equal(driver.code, 0, driver.stderr);
      const { sums, put } = JSON.parse(driver.stdout) as { sums: number[]; put: number };
      assert.deepEqual(sums, Array.from({ length: 24 }, (_, i) => i * 200_000), 'every task result is right');
      assert.equal(put, 600_000);
      // The daemon closed every one of them (most refused at once, the rest at the handshake deadline).
      await until(() => closed === sockets.length, `the daemon to close all idle connections (${closed} of ${sockets.length} closed)`, 30_000);
      const [after] = await statusNodes(home);
      assert.ok(after!.openFiles !== undefined && after!.openFiles < 512, `descriptors open after the flood: ${after!.openFiles}`);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});

test('shoal start --allowed-origin: the head and the data port refuse a web page (403) and accept the allowed origin', { timeout: 120_000 }, async () => {
  await withDaemon('ulimit -n 4096', ['--allowed-origin', 'http://dashboard.example', '--allowed-origin', 'https://other.example:8443'], async (home) => {
    const head = daemonOf(home).head;
    const [node] = await statusNodes(home);
    for (const url of [head, node!.dataUrl]) {
      assert.equal(await upgradeStatus(home, url, 'http://evil.example'), 403, `${url} refuses http://evil.example`);
      assert.equal(await upgradeStatus(home, url, 'http://dashboard.example'), 101, `${url} accepts the allowed origin`);
      assert.equal(await upgradeStatus(home, url, 'https://other.example:8443'), 101, `${url} accepts the second allowed origin`);
    }
    // An origin with a path is a mistake the CLI names.
    const badHome = mkdtempSync(join(tmpdir(), 'shoal-home-bad-'));
    const bad = await shoal(badHome, ['start', '--head', '--port', '0', '--allowed-origin', 'http://x.example/path']).finally(() =>
      rmSync(badHome, { recursive: true, force: true }),
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--allowed-origin.*origin like/);
  });
});

test('a connection to the node socket that never says who it is is closed at the hello deadline', { timeout: 60_000 }, async () => {
  const node = new NodeManager({ numCpus: 1 });
  try {
    await node.ready();
    const started = Date.now();
    const socket = connect(node.address.slice('unix:'.length));
    socket.on('error', () => {});
    socket.resume();
    const closedAt = await new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(Number.POSITIVE_INFINITY), 20_000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(Date.now());
      });
    });
    socket.destroy();
    assert.ok(closedAt - started < 20_000, 'closed within 20 s (the deadline is 5 s)');
  } finally {
    await node.shutdown();
  }
});

test('out of descriptors, a put fails with DescriptorsExhaustedError saying what to raise, not ERR_SHM_EMFILE', { timeout: 60_000 }, async () => {
  const run = await new Promise<Run>((resolve) => {
    execFile(
      'bash',
      ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, '--import', 'tsx', EXHAUST],
      { timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { name: string; code: string; message: string };
  assert.equal(result.code, 'ERR_DESCRIPTORS_EXHAUSTED');
  assert.equal(result.name, 'DescriptorsExhaustedError');
  assert.match(result.message, /File descriptors exhausted \(EMFILE\) at open .*limit 256\. Raise this process's limit \(`ulimit -n/);
});
