import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LOG_READ_BYTES, nodeLog, readLog } from './log-file.js';

function withFile(check: (path: string) => void): void {
  const directory = mkdtempSync(join(tmpdir(), 'shoal-log-file-'));
  try {
    check(join(directory, 'daemon.log'));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

test('the last lines of a log, then what was written after them, never a line half written', () => {
  withFile((path) => {
    writeFileSync(path, 'one\ntwo\nthree\nhalf');
    const last = readLog(path, { lines: 2 });
    assert.deepEqual(last.lines, ['two', 'three']);
    assert.equal(last.end, 'one\ntwo\nthree\n'.length, 'the half line is left for the next read');
    assert.deepEqual(readLog(path, { lines: 0 }).lines, []);
    assert.deepEqual(readLog(path, {}).lines, ['one', 'two', 'three']);
    assert.deepEqual(readLog(path, { partial: true }).lines, ['one', 'two', 'three', 'half'], 'last words may be half a line');
    appendFileSync(path, ' done\nfour\n');
    const next = readLog(path, { after: last.end });
    assert.deepEqual(next.lines, ['half done', 'four']);
    assert.deepEqual(readLog(path, { after: next.end }), { lines: [], end: next.end }, 'nothing new');
    // Truncated (rotated): read from its start again.
    writeFileSync(path, 'fresh\n');
    assert.deepEqual(readLog(path, { after: next.end }).lines, ['fresh']);
  });
});

test('a long log is read from within its end, its first cut line skipped', () => {
  withFile((path) => {
    const filler = 'x'.repeat(99);
    writeFileSync(path, `${Array.from({ length: (2 * LOG_READ_BYTES) / 100 }, () => filler).join('\n')}\nlast\n`);
    const { lines } = readLog(path, {});
    assert.ok(lines.length < LOG_READ_BYTES / 100 + 1 && lines.length > LOG_READ_BYTES / 100 - 2, `${lines.length} lines`);
    assert.ok(lines.slice(0, -1).every((line) => line === filler), 'no cut line');
    assert.equal(lines.at(-1), 'last');
    assert.deepEqual(readLog(path, { within: 10 }).lines, ['last']);
  });
});

test("a node's /api/logs: the last lines, then on from an offset; no file, no lines", () => {
  withFile((path) => {
    assert.deepEqual(nodeLog(undefined, new URL('http://x/api/logs')), { file: null, lines: [], end: 0 });
    assert.deepEqual(nodeLog(path, new URL('http://x/api/logs')), { file: path, lines: [], end: 0 }, 'not written yet');
    writeFileSync(path, 'a\nb\nc\n');
    assert.deepEqual(nodeLog(path, new URL('http://x/api/logs?lines=1')).lines, ['c']);
    assert.deepEqual(nodeLog(path, new URL('http://x/api/logs?lines=nonsense')).lines, ['a', 'b', 'c'], 'not a count: the default 200');
    assert.deepEqual(nodeLog(path, new URL('http://x/api/logs?lines=0')).lines, []);
    assert.deepEqual(nodeLog(path, new URL('http://x/api/logs?after=2')), { file: path, lines: ['b', 'c'], end: 6 });
  });
});

test('following a log gets past a line longer than a whole read (in pieces), not stuck at its start', () => {
  withFile((path) => {
    const long = 'x'.repeat(2 * LOG_READ_BYTES);
    writeFileSync(path, `a\n${long}\nlast\n`);
    const pieces: string[] = [];
    let end = 2;
    for (let reads = 0; reads < 5; reads++) {
      const read = readLog(path, { after: end });
      pieces.push(...read.lines);
      assert.ok(read.end > end || read.lines.length === 0, 'each read moves on');
      if (read.end === end) break;
      end = read.end;
    }
    assert.equal(pieces.join(''), `${long}last`);
    assert.equal(pieces.at(-1), 'last');
  });
});
