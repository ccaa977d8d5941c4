// The actor and streaming examples, run as a user would (their own processes, their own nodes).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const example = (path: string) => fileURLToPath(new URL(`../examples/dist/${path}`, import.meta.url));

test('examples/actors/model: the matrix is built once, in the actor, and every task gets an answer', async () => {
  const { stdout } = await run(process.execPath, [example('actors/model.js'), '2000', '40']);
  assert.match(stdout, /built 1 time\(s\), in process \d+/);
  assert.match(stdout, /answered 40 queries from tasks/);
});

test('examples/streaming/pipeline: every chunk is summed, and the store never holds more than a few chunks', async () => {
  const { stdout } = await run(process.execPath, [example('streaming/pipeline.js'), '48', '2']);
  const sums = /sum (\d+) \(expected (\d+)\)/.exec(stdout);
  assert.ok(sums, stdout);
  assert.equal(sums[1], sums[2]);
  const peak = /peak store use \d+ MiB: ([\d.]+)% of what was produced/.exec(stdout);
  assert.ok(peak, stdout);
  // 48 chunks produced, at most the window (4) ahead plus the 4 transforms in flight held at once.
  assert.ok(Number(peak[1]) <= (100 * 10) / 48, `peak ${peak[1]}% of what was produced`);
});
