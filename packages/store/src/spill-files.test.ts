import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { SpillError } from '@shoal/protocol';
import { SpillFiles } from './spill-files.js';

/** A fresh spill root on disk, removed after the test. */
function rootFor(t: TestContext): string {
  const root = mkdtempSync(join(tmpdir(), 'shoal-spill-test-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

test('objects spilled together read back byte for byte; a batch file goes with its last object; close removes the directory', (t) => {
  const root = rootFor(t);
  const spill = new SpillFiles(join(root, 'made-on-first-spill'), 'session1', false);
  t.after(() => spill.close());
  assert.ok(!existsSync(spill.directory), 'nothing is made before the first spill');
  // Small ones and one past a single 64 MiB write.
  const objects = [
    ...Array.from({ length: 50 }, (_, i) => ({ id: `small${i}`, bytes: randomBytes(100 * 1024 + i) })),
    { id: 'large', bytes: randomBytes(70 << 20) },
  ];
  spill.write(objects.slice(0, 25));
  spill.write(objects.slice(25));
  assert.deepEqual(readdirSync(spill.directory).sort(), ['batch.0', 'batch.1', 'owner.json'], 'one file per batch, owned like a session directory');
  for (const { id, bytes } of objects) {
    const into = new Uint8Array(bytes.byteLength);
    spill.read(id, into);
    assert.ok(Buffer.from(into).equals(bytes), `${id} reads back as written`);
  }
  const total = objects.reduce((sum, { bytes }) => sum + bytes.byteLength, 0);
  const stats = spill.stats();
  assert.deepEqual([stats.spilledBytes, stats.spilledObjects, stats.spills, stats.spillBytesTotal, stats.restores], [total, 51, 51, total, 51]);
  assert.throws(() => spill.write([objects[0]!]), /spilled already/);
  assert.throws(() => spill.read('small0', new Uint8Array(1)), RangeError);
  for (const { id } of objects.slice(0, 24)) spill.delete(id);
  assert.ok(readdirSync(spill.directory).includes('batch.0'), 'a file stays while an object in it is left');
  spill.delete('small24');
  spill.delete('small24');
  assert.ok(!readdirSync(spill.directory).includes('batch.0'), 'and goes with its last object');
  assert.equal(spill.stats().spilledBytes, total - objects.slice(0, 25).reduce((sum, { bytes }) => sum + bytes.byteLength, 0));
  spill.close();
  assert.ok(!existsSync(spill.directory));
});

test('a spill directory left by a dead process is swept by the next spill under the same root', (t) => {
  const root = rootFor(t);
  const dead = join(root, 'shoal-deadsession');
  mkdirSync(dead);
  // A pid that exited: the owner file is all a sweep has.
  const exited = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  writeFileSync(join(dead, 'owner.json'), JSON.stringify({ pid: Number(exited.stdout.trim()), startTime: null }));
  writeFileSync(join(dead, 'batch.0'), 'spilled by a node that was killed');
  const spill = new SpillFiles(root, 'live', false);
  t.after(() => spill.close());
  spill.write([{ id: 'a', bytes: randomBytes(10) }]);
  assert.ok(!existsSync(dead), 'the dead session’s spill files are gone');
  assert.ok(existsSync(spill.directory));
});

/** Mounts a tmpfs of `size` at a new directory, unmounted after the test; undefined when this process may not mount. */
function smallDisk(t: TestContext, size: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const mount = mkdtempSync(join(tmpdir(), 'shoal-spill-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mount], { stdio: 'ignore' });
  } catch {
    rmSync(mount, { recursive: true, force: true });
    return undefined;
  }
  t.after(() => {
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  });
  return mount;
}

test('a full disk is a SpillError with ENOSPC and what to do; no partial file, and what was spilled before reads back', (t) => {
  const disk = smallDisk(t, '1m');
  if (!disk) return t.skip('needs root to mount a small tmpfs');
  const spill = new SpillFiles(disk, 'full', false);
  t.after(() => spill.close());
  const first = randomBytes(300 * 1024);
  spill.write([{ id: 'first', bytes: first }]);
  assert.throws(
    () => spill.write([{ id: 'second', bytes: randomBytes(2 << 20) }]),
    (error: unknown) =>
      error instanceof SpillError &&
      error.errnoCode === 'ENOSPC' &&
      error.code === 'ERR_SPILL_FAILED' &&
      /Cannot write 2097152 bytes in the spill directory .*\(ENOSPC\)\. The disk is full: free space there, or point `spillDirectory`/.test(error.message),
  );
  assert.deepEqual(readdirSync(spill.directory).sort(), ['batch.0', 'owner.json'], 'the failed batch left no file');
  assert.equal(spill.has('second'), false);
  const into = new Uint8Array(first.byteLength);
  spill.read('first', into);
  assert.ok(Buffer.from(into).equals(first));
});
