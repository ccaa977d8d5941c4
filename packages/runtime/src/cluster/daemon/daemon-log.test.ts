import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { lastWords } from './daemon-log.js';

const line = (pid: number, msg: string) => JSON.stringify({ level: 50, time: 0, pid, msg });

function withLog(text: string | undefined, check: (home: string) => void): void {
  const home = mkdtempSync(join(tmpdir(), 'shoal-last-words-'));
  try {
    if (text !== undefined) writeFileSync(join(home, 'daemon.log'), text);
    check(home);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

test("the last words are the daemon's last message other than its stopping line", () => {
  const log = [line(7, 'head listening'), line(7, 'could not start: connect ECONNREFUSED'), line(7, 'stopping'), ''].join('\n');
  withLog(log, (home) => assert.equal(lastWords(home, 7), 'could not start: connect ECONNREFUSED'));
});

test("another daemon's lines in the same log and text that is not JSON are passed over", () => {
  const log = [line(7, 'refused the token'), line(8, 'an earlier daemon'), 'Error: boom', '    at x (y.js:1:1)'].join('\n');
  withLog(log, (home) => assert.equal(lastWords(home, 7), 'refused the token'));
});

test('a daemon that said nothing, or left no log', () => {
  withLog(line(8, 'someone else'), (home) => assert.equal(lastWords(home, 7), 'it said nothing'));
  withLog(undefined, (home) => assert.equal(lastWords(home, 7), 'it left no log'));
});

test('only the end of a long log is read, and a line cut at its start is skipped', () => {
  const filler = Array.from({ length: 2000 }, (_, index) => line(9, `filler ${index} ${'x'.repeat(40)}`));
  withLog([line(7, 'long ago'), ...filler, line(7, 'the end')].join('\n'), (home) => assert.equal(lastWords(home, 7), 'the end'));
  withLog([line(7, 'long ago'), ...filler].join('\n'), (home) => assert.equal(lastWords(home, 7), 'it said nothing'));
});
