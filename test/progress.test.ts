// Progress on long work (issue "See inside a running cluster"): puts and pulls of objects over
// 1 GiB draw a bar on a terminal (cli-progress), never on anything else; small ones never.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ObjectStore } from '@shoal/store';
import { PROGRESS_MIN_BYTES, progressWanted, showCopyProgress } from '@shoal/runtime';
import { CLI, runProgram } from './cluster-helpers.js';
import { freePort } from './helpers.js';

const PUTTER = fileURLToPath(new URL('./fixtures/big-put.ts', import.meta.url));

/** A stream that says it is a terminal and keeps what is written to it. */
function fakeTerminal(): Writable & { isTTY: boolean; columns: number; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return Object.assign(stream, { isTTY: true, columns: 120, text: () => chunks.join(''), cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
}

function storeFor(t: TestContext): ObjectStore {
  const root = mkdtempSync('/dev/shm/progress-test-');
  const store = new ObjectStore({ shmRoot: root, handleSignals: false, objectStoreMemory: 3 * 2 ** 30 });
  t.after(() => {
    store.close();
    showCopyProgress({ isTTY: false } as never);
    rmSync(root, { recursive: true, force: true });
  });
  return store;
}

test('bars are drawn on a terminal only, not in CI, not with SHOAL_PROGRESS=0', () => {
  const terminal = fakeTerminal();
  assert.equal(progressWanted(terminal, {}), true);
  assert.equal(progressWanted(terminal, { CI: 'true' }), false);
  assert.equal(progressWanted(terminal, { SHOAL_PROGRESS: '0' }), false);
  assert.equal(progressWanted(Object.assign(new Writable(), { isTTY: false }), {}), false);
  assert.equal(showCopyProgress(Object.assign(new Writable(), { isTTY: false }), {}), false);
});

test('a put of more than 1 GiB shows a bar on a terminal and stores every byte; a small one shows none', (t) => {
  const store = storeFor(t);
  const terminal = fakeTerminal();
  assert.equal(showCopyProgress(terminal, {}), true);
  const small = store.put(new Float64Array(1 << 20).fill(2));
  assert.equal(terminal.text(), '', 'no bar for 8 MiB');
  const big = new Uint8Array(PROGRESS_MIN_BYTES + 2 ** 26);
  for (let at = 0; at < big.length; at += 4096) big[at] = (at >> 12) & 0xff;
  big[big.length - 1] = 7;
  const ref = store.put(big);
  assert.match(terminal.text(), /shoal: storing \[-+\] 0% \| 0\/1089 MiB/, 'drawn at the start');
  assert.match(terminal.text(), /shoal: storing \[=+\] 100% \| 1089\/1089 MiB/, 'and at the end');
  const back = store.getSync(ref) as Uint8Array;
  assert.equal(back.length, big.length);
  for (let at = 0; at < big.length; at += 4096) if (back[at] !== big[at]) assert.fail(`byte ${at} differs`);
  assert.equal(back[back.length - 1], 7);
  assert.equal((store.getSync(small) as Float64Array)[5], 2);
});

test('an object of more than 1 GiB arriving from another node shows a pulling bar until it is written', (t) => {
  const store = storeFor(t);
  const terminal = fakeTerminal();
  showCopyProgress(terminal, {});
  const size = PROGRESS_MIN_BYTES + 2 ** 20;
  const incoming = store.acceptIncoming('pulled-object-id-0001', size);
  const chunk = new Uint8Array(2 ** 24);
  for (let at = 0; at < size; at += chunk.length) incoming.write(chunk.subarray(0, Math.min(chunk.length, size - at)), at);
  assert.equal(incoming.state, 'written');
  assert.match(terminal.text(), /shoal: pulling \[=+\] 100% \| 1025\/1025 MiB/);
  incoming.discard();
});

test('a program whose stderr is not a terminal writes nothing there for a 1.1 GiB put', { timeout: 120_000 }, async () => {
  const run = await runProgram(PUTTER, ['shoal-test-child'], {});
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), String(PROGRESS_MIN_BYTES + 2 ** 26));
  assert.equal(run.stderr, '');
});

/** Runs `command` under a pseudo-terminal (util-linux's `script`), outside CI: its exit code and all it wrote. */
function onTerminal(command: string, env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, CI: '', SHOAL_PROGRESS: '', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

test('under a real terminal (a pseudo-terminal from `script`), a program put of 1.1 GiB draws the bar on stderr', { timeout: 120_000 }, async () => {
  const run = await onTerminal(`${process.execPath} --import tsx ${PUTTER} shoal-test-child`);
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, /shoal: storing \[=+\] 100% \| 1089\/1089 MiB/);
  // The bar clears its line with escapes, no newline: the program's output follows on that line.
  const plain = run.output.replace(/\x1B(\[[0-9;?]*[A-Za-z]|[78])/g, '');
  assert.match(plain, new RegExp(`(^|left)${PROGRESS_MIN_BYTES + 2 ** 26}\\r?$`, 'm'), 'the result on stdout');
});

test('on a terminal, `shoal start --join-timeout` shows the seconds it waits for its head', { timeout: 60_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'shoal-progress-home-'));
  try {
    const port = await freePort();
    const run = await onTerminal(`${process.execPath} ${CLI} start --address ws://127.0.0.1:${port} --token t0ken --join-timeout 2 --num-cpus 1`, { SHOAL_HOME: home });
    assert.notEqual(run.code, 0, 'no head came');
    assert.match(run.output, new RegExp(`shoal: waiting for the head at ws://127\\.0\\.0\\.1:${port} \\[[=-]+\\] \\d+% \\| [12]/2 s`));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
