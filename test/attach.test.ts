import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ObjectNotFoundError, ShoalError, get, init, shutdown, store } from 'shoal';
import { cleanUp, start } from './runtime-helpers.js';
import { eventually, freePort } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/attach-child.ts', import.meta.url));

afterEach(cleanUp);

test('another process attaches with SHOAL_ADDRESS: reads zero-copy, uses names, runs tasks, exits by itself', async () => {
  const session = await start({ numCpus: 1 });
  const ref = store.put(new Float64Array(100_000).fill(0.5));
  await store.putNamed('config', { label: 'v1' });
  const child = fork(CHILD, ['read', JSON.stringify(ref), 'shoal-test-child'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, SHOAL_ADDRESS: session.address },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const report = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('message', (message) => resolve(message as Record<string, unknown>));
    child.once('exit', (code) => reject(new Error(`the attached process exited (${code}) before reporting`)));
  });
  assert.deepEqual(report, { attached: true, sum: 50_000, label: 'v1', publishedVersion: 1, doubled: 42, missing: 'ObjectNotFoundError' });
  assert.equal(await exited, 0, 'the attached process exits without calling shutdown()');
  assert.deepEqual(await store.getNamed('from-child'), { pid: child.pid });
});

test('named objects: versions, watch, and the old version freed once nothing holds it', async () => {
  await start({ numCpus: 0 });
  const watcher = store.watch<Float64Array>('matrix');
  let firstId = '';
  await (async () => {
    const first = await store.putNamed('matrix', new Float64Array(50_000).fill(1));
    firstId = first.ref.id;
    assert.equal(first.version, 1);
  })();
  await (async () => {
    // Scoped, so that this process's refs to version 1 become garbage afterwards.
    const seen = await watcher.next();
    assert.equal(seen.value?.version, 1);
    assert.equal((await seen.value!.ref)[0], 1);
  })();
  const second = await store.putNamed('matrix', new Float64Array(50_000).fill(2));
  assert.equal(second.version, 2);
  assert.equal((await watcher.next()).value?.version, 2);
  assert.equal((await store.getNamed<Float64Array>('matrix'))[0], 2);
  await watcher.return!();
  // Version 1 is held by nothing now but refs this process may still have in garbage.
  const path = `${store.stats().directory}/${firstId}`;
  await eventually(() => !existsSync(path), 'the replaced version to be freed');
  await assert.rejects(store.getNamed('absent'), ObjectNotFoundError);
  await assert.rejects(store.putNamed('bad name!', 1), TypeError);
  await assert.rejects(store.putNamed('', 1), TypeError);
});

test('a stale SHOAL_ADDRESS (its node is gone): using the store says it cannot attach (ENOENT), not that a node went away', async () => {
  const address = process.env.SHOAL_ADDRESS;
  process.env.SHOAL_ADDRESS = 'unix:/dev/shm/shoal-gonelongago/node.sock';
  try {
    const ref = store.put(1); // an inline object: queued for the node, which never answers
    await assert.rejects(get(ref), (error: unknown) => error instanceof ShoalError && error.code === 'ERR_ATTACH_FAILED' && /\(ENOENT\).*SHOAL_ADDRESS/.test(error.message));
  } finally {
    if (address === undefined) delete process.env.SHOAL_ADDRESS;
    else process.env.SHOAL_ADDRESS = address;
    await shutdown();
  }
});

test('attaching to a node that is not there, or to a cluster address, fails clearly', async () => {
  await assert.rejects(init({ address: 'unix:/dev/shm/shoal-doesnotexist/node.sock' }), (error: unknown) => {
    return error instanceof ShoalError && error.code === 'ERR_ATTACH_FAILED' && /No node runs there: is it running/.test(error.message);
  });
  // A cluster address with no node of it on this machine: joining over the network needs the
  // token, and a head to answer.
  const home = process.env.SHOAL_HOME;
  const token = process.env.SHOAL_TOKEN;
  process.env.SHOAL_HOME = mkdtempSync(join(tmpdir(), 'shoal-home-empty-'));
  delete process.env.SHOAL_TOKEN;
  try {
    await assert.rejects(init({ address: 'ws://127.0.0.1:6380' }), (error: unknown) => error instanceof ShoalError && error.code === 'ERR_NO_TOKEN');
    const port = await freePort();
    await assert.rejects(
      init({ address: `ws://127.0.0.1:${port}`, token: 'some-token' }),
      (error: unknown) => error instanceof ShoalError && error.code === 'ERR_HEAD_UNREACHABLE' && /Cannot reach the head at .* Is it running\?/.test(error.message),
    );
  } finally {
    rmSync(process.env.SHOAL_HOME, { recursive: true, force: true });
    if (home === undefined) delete process.env.SHOAL_HOME;
    else process.env.SHOAL_HOME = home;
    if (token !== undefined) process.env.SHOAL_TOKEN = token;
  }
  await assert.rejects(init({ address: 'tcp://nowhere' }), TypeError);
  await assert.rejects(init({ address: 'unix:/dev/shm/shoal-x/node.sock', numCpus: 2 }), /cannot be given with `address`/);
  await shutdown();
});
