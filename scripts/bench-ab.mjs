#!/usr/bin/env node
// The cost of a change on the task path, measured as the issues ask ("tasks suite before/after,
// same run"): builds REV in a worktree beside this checkout, then runs the tasks suite
// (bench/dist/tasks.js) alternately there and here, PAIRS times, and prints the medians over
// every run's samples, raw and as ratios to the same run's peers (Piscina, the fork pool), which
// cancel the machine's drift.
//
//   node scripts/bench-ab.mjs REV [PAIRS=5]        (after `npm run build` here)
//
// The worktree stays in $TMPDIR/shoal-ab-REV for the next comparison; `git worktree remove` it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [rev, pairsText = '5'] = process.argv.slice(2);
const pairs = Number(pairsText);
if (!rev || !Number.isInteger(pairs) || pairs < 1) {
  console.error('usage: node scripts/bench-ab.mjs REV [PAIRS]   (REV: the commit to compare HEAD with)');
  process.exit(2);
}
const here = fileURLToPath(new URL('..', import.meta.url));
const sha = execFileSync('git', ['rev-parse', '--short', rev], { cwd: here, encoding: 'utf8' }).trim();
const there = join(tmpdir(), `shoal-ab-${sha}`);
const run = (command, args, cwd) => {
  const result = spawnSync(command, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed in ${cwd} (exit ${result.status})`);
};
if (!existsSync(join(there, 'bench', 'dist', 'tasks.js'))) {
  console.error(`building ${sha} in ${there} (npm ci, npm run build)...`);
  if (!existsSync(there)) run('git', ['worktree', 'add', '--detach', there, sha], here);
  run('npm', ['ci', '--no-audit', '--no-fund'], there);
  run('npm', ['run', 'build'], there);
}

const samples = { before: [], after: [] };
for (let i = 1; i <= pairs; i++) {
  for (const [side, cwd] of [['before', there], ['after', here]]) {
    console.error(`pair ${i}/${pairs}: ${side} (${side === 'before' ? sha : 'HEAD'})`);
    run(process.execPath, ['--expose-gc', 'bench/dist/tasks.js'], cwd);
    const results = JSON.parse(readFileSync(join(cwd, 'bench', 'results', 'tasks.json'), 'utf8')).tasks.results;
    samples[side].push(Object.fromEntries(results.map((result) => [result.name, result])));
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const all = (side, name, key) => samples[side].flatMap((runResults) => runResults[name][key].samples);
const perRun = (side, key, peer) =>
  samples[side].flatMap((runResults) => runResults['Shoal remote'][key].samples.map((value, i) => value / runResults[peer][key].samples[i]));
const rows = [];
for (const [key, label] of [['rate', 'tasks/s'], ['p50Us', 'p50 µs']]) {
  for (const name of ['Shoal remote', 'Piscina', 'fork IPC pool']) {
    const before = median(all('before', name, key));
    const after = median(all('after', name, key));
    rows.push([`${name} ${label}`, before.toFixed(1), after.toFixed(1), (after / before).toFixed(3)]);
  }
  for (const peer of ['Piscina', 'fork IPC pool']) {
    const before = median(perRun('before', key, peer));
    const after = median(perRun('after', key, peer));
    rows.push([`Shoal ÷ ${peer} ${label}`, before.toFixed(3), after.toFixed(3), (after / before).toFixed(3)]);
  }
}
const count = samples.before.length * samples.before[0]['Shoal remote'].rate.samples.length;
console.log(`tasks suite, ${sha} (before) against HEAD (after), ${pairs} alternating runs each, medians of ${count} samples a side`);
console.log(['', 'before', 'after', 'after ÷ before'].join('\t'));
for (const row of rows) console.log(row.join('\t'));
console.log('(tasks/s: higher is faster; p50: lower is faster. The ÷ rows divide by the same run\'s peer.)');
