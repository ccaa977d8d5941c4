// The recommender example end to end: a node:cluster server whose workers attach to the
// primary's Shoal node and serve from a shared embedding matrix that is replaced while they run.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get } from 'node:http';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isAlive, sleep, until } from './runtime-helpers.js';

const SERVER = fileURLToPath(new URL('../examples/dist/recommender/server.js', import.meta.url));
const ITEMS = 20_000;
const DIM = 64;

interface Recommendation {
  item: number;
  version: number;
  pid: number;
  results: { item: number; score: number }[];
}

/**
 * A GET on a connection of its own, so node:cluster hands each request to the next server
 * process (fetch keeps connections alive: requests made before the second process listened would
 * all stay with the first).
 */
function request(url: string): Promise<{ status: number; body: Recommendation }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Recommendation });
        } catch (error) {
          reject(error as Error);
        }
      });
      response.on('error', reject);
    }).on('error', reject);
  });
}

/** The server running with `env` (and the test's sizes), its output so far, and its address once it listens. */
interface Server {
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly base: string;
  output(): string;
}

/** Runs `body` with a server started with `env`; it is killed after, whatever happened. */
async function withServer(env: Record<string, string>, body: (server: Server) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, [SERVER, 'shoal-test-child'], {
    env: { ...process.env, PORT: '0', WORKERS: '2', ITEMS: String(ITEMS), DIM: String(DIM), ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  try {
    const listening = /listening on http:\/\/127\.0\.0\.1:(\d+)/;
    await until(() => listening.test(output), 'the server to listen', 30_000);
    await body({ process: child, exited, base: `http://127.0.0.1:${listening.exec(output)![1]}`, output: () => output });
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
      await sleep(100);
    }
  }
}

/**
 * Requests kept flowing on two lanes until `stop()`, which resolves with every status seen;
 * `seen`: the latest version each server process answered from.
 */
function keepRequesting(base: string): { seen: Map<number, number>; stop(): Promise<number[]> } {
  let running = true;
  const statuses: number[] = [];
  const seen = new Map<number, number>();
  const lanes = Array.from({ length: 2 }, async (_, lane) => {
    for (let i = 0; running; i++) {
      const { status, body } = await request(`${base}/recommend?item=${(lane * 1000 + i) % ITEMS}&k=3`);
      statuses.push(status);
      if (status === 200) seen.set(body.pid, Math.max(seen.get(body.pid) ?? 0, body.version));
    }
  });
  return {
    seen,
    stop: async () => {
      running = false;
      await Promise.all(lanes);
      return statuses;
    },
  };
}

/** Resolves once both server processes answered from `version`. */
function servingEverywhere(seen: Map<number, number>, version: number): Promise<void> {
  return until(() => seen.size === 2 && [...seen.values()].every((seenVersion) => seenVersion === version), `every server process to answer from version ${version}`, 30_000);
}

test('the recommender serves from shared memory and switches versions with no failed request', { timeout: 120_000 }, async () => {
  await withServer({}, async (server) => {
    const { base } = server;
    const directory = /session (\/dev\/shm\/shoal-[0-9A-Za-z]+)/.exec(server.output())![1]!;
    // Objects' files are named by their ids, which have no dot (unlike owner.json, node.*, and the
    // pool.* / drain.* files of memory kept for reuse).
    const matrices = () => readdirSync(directory).filter((name) => !name.includes('.'));

    const first = (await (await fetch(`${base}/recommend?item=7&k=5`)).json()) as Recommendation;
    assert.equal(first.version, 1);
    assert.equal(first.results.length, 5);
    assert.ok(first.results.every((result) => result.item !== 7 && Number.isFinite(result.score)));
    assert.deepEqual((await fetch(`${base}/recommend?item=-1`)).status, 400);
    assert.equal(matrices().length, 1, 'one matrix in shared memory, whatever the number of server processes');

    // Keep requests flowing through the switch; every one must succeed.
    const load = keepRequesting(base);
    await until(() => load.seen.size === 2, 'both server processes to answer', 30_000);

    const reload = (await (await fetch(`${base}/admin/reload`, { method: 'POST' })).json()) as { version: number };
    assert.equal(reload.version, 2);
    await servingEverywhere(load.seen, 2);
    // The old matrix goes once the server processes let go of it (their refs are collected).
    await until(() => matrices().length === 1, `the old matrix to be released (${readdirSync(directory).join(' ')})`, 30_000);
    const statuses = await load.stop();
    assert.ok(statuses.length > 0);
    assert.deepEqual(statuses.filter((status) => status !== 200), [], 'no failed request during the switch');
    assert.equal(matrices().length, 1);

    server.process.kill('SIGTERM');
    assert.equal(await server.exited, 0);
    assert.ok(!existsSync(directory), 'stopping the server removes the session directory');
    const pids = [...load.seen.keys()];
    await until(() => pids.every((pid) => !isAlive(pid)), 'the server workers to exit');
  });
});

test('with a store too small for three versions, a reload spills the oldest version held (nobody reads it) to make room, a rollback works, and no request fails', { timeout: 120_000 }, async (t) => {
  const spillRoot = mkdtempSync(join(tmpdir(), 'shoal-spill-recommender-'));
  t.after(() => rmSync(spillRoot, { recursive: true, force: true }));
  // Room for two matrices and a half: the third (new, current, previous) fits only if one is spilled.
  const storeMb = Math.ceil((2.5 * ITEMS * DIM * 4) / 2 ** 20);
  await withServer({ STORE_MB: String(storeMb), SPILL_DIR: spillRoot, ROLLBACK: '1' }, async (server) => {
    const load = keepRequesting(server.base);
    await until(() => load.seen.size === 2, 'both server processes to answer', 30_000);
    const admin = async (action: 'reload' | 'rollback') => {
      const response = await fetch(`${server.base}/admin/${action}`, { method: 'POST' });
      const body = (await response.json()) as { version?: number; error?: string };
      assert.equal(response.status, 200, `${action}: ${JSON.stringify(body)}`);
      return body.version!;
    };
    assert.equal(await admin('reload'), 2); // v1 kept for rollback, v2 served
    await servingEverywhere(load.seen, 2);
    assert.equal(await admin('reload'), 3); // v3 does not fit beside v1 and v2: v1, read by nobody, is spilled (then dropped)
    await servingEverywhere(load.seen, 3);
    assert.match(server.output(), /version 3 published; store: \d+ MB in memory; spilled [1-9]\d* objects so far/, `the third version made room by spilling:\n${server.output()}`);
    assert.equal(await admin('rollback'), 4); // v2 again
    await servingEverywhere(load.seen, 4);
    assert.equal(await admin('reload'), 5);
    await servingEverywhere(load.seen, 5);
    const statuses = await load.stop();
    assert.deepEqual(statuses.filter((status) => status !== 200), [], 'no failed request through the reloads and the rollback');
    server.process.kill('SIGTERM');
    assert.equal(await server.exited, 0);
    assert.deepEqual(readdirSync(spillRoot), [], 'stopping the server removes its spill directory');
  });
});
