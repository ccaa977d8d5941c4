import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  ObjectFreedError,
  ObjectRef,
  ObjectStoreFullError,
  SharedMemoryError,
  StoreClosedError,
} from '@shoal/protocol';
import { ObjectStore, sweepStaleSessions } from '@shoal/store';
import { Child, eventually } from './helpers.js';

const GB = 1024 ** 3;

interface ReadReport {
  length: number;
  sum: number;
  first: number;
  firstAfterWrite: number;
  firstInWriterView: number;
  rssGrowthAtGet: number;
  faultsAtGet: number;
}

describe('a large object put in one process and read in another', () => {
  test('a 1 GB Float64Array is read by a separate process without a copy', async () => {
    using store = new ObjectStore();
    const n = GB / 8;
    const writer = store.create(Float64Array, n);
    for (let i = 0; i < n; i++) writer.array[i] = i % 1024;
    const ref = writer.seal();
    const expected = (n / 1024) * ((1023 * 1024) / 2);

    await using child = new Child(['read', JSON.stringify(ref)]);
    const report = await child.message<ReadReport>();
    assert.equal(report.length, n);
    assert.equal(report.sum, expected, 'the reader sees every element the writer wrote');
    // A copy of 1 GB would grow the reader's RSS by 1 GB and take 262,144 page faults before the
    // get returned; mapping does neither until the pages are touched.
    assert.ok(report.rssGrowthAtGet < 64 * 1024 ** 2, `RSS grew by ${report.rssGrowthAtGet} bytes at get`);
    // The bound is a tenth of a copy's faults: the get itself loads code and grows the heap a little
    // (a few thousand faults on a busy machine), which says nothing about copying.
    const copyFaults = GB / 4096;
    assert.ok(report.faultsAtGet < copyFaults / 10, `${report.faultsAtGet} page faults during get (a copy takes ${copyFaults})`);
  });

  test('a write in the reader is invisible to the owner and to a third process', async () => {
    using store = new ObjectStore();
    const ref = store.put(new Float64Array(1 << 20).fill(5));

    await using writerChild = new Child(['read', JSON.stringify(ref), 'write']);
    const written = await writerChild.message<ReadReport>();
    assert.equal(written.first, 5);
    assert.equal(written.firstInWriterView, -1, 'the view written through keeps its write');
    assert.equal(written.firstAfterWrite, 5, "a later get in the writer's own process sees the stored bytes");

    assert.equal(store.getSync(ref)[0], 5, 'the owner still sees the stored value');
    await using third = new Child(['read', JSON.stringify(ref)]);
    const seen = await third.message<ReadReport>();
    assert.equal(seen.first, 5, 'a third process still sees the stored value');
    assert.equal(seen.sum, 5 * (1 << 20));
  });

  test('a sealed writer array writes privately after seal', async () => {
    using store = new ObjectStore();
    const writer = store.create(Float64Array, 100_000);
    writer.array.fill(1);
    const ref = writer.seal();
    writer.array[0] = 99;
    await using child = new Child(['read', JSON.stringify(ref)]);
    const seen = await child.message<ReadReport>();
    assert.equal(seen.first, 1);
    assert.equal(seen.sum, 100_000);
  });
});

describe('getting objects in the owner process', () => {
  test('gets of a segment object share one mapping and never copy', () => {
    using store = new ObjectStore();
    const ref = store.put(new Float64Array(1 << 20).fill(2));
    const a = store.getSync(ref);
    const b = store.getSync(ref);
    assert.equal(a.buffer, b.buffer, 'both views are over the same mapping');
    assert.equal(a.byteOffset % 64, 0);
    assert.equal(store.stats().cachedMappings, 1);
  });

  test('every get sees the object as stored: a write stays in the views it was made through', () => {
    using store = new ObjectStore();
    const ref = store.put(new Float64Array(1 << 20).fill(2));
    const first = store.getSync(ref);
    first[0] = 42;
    first[(1 << 20) - 1] = 43;
    const second = store.getSync(ref);
    assert.equal(first[0], 42, 'the first view keeps its writes');
    assert.equal(first[(1 << 20) - 1], 43);
    assert.equal(second[0], 2, 'a get after the write sees the stored bytes');
    assert.equal(second[(1 << 20) - 1], 2);
    assert.notEqual(first.buffer, second.buffer, 'the written mapping is no longer handed out');
    second[1] = 7;
    const third = store.getSync(ref);
    assert.equal(third[1], 2, 'so does a get after a write through the second');
    assert.equal(first[1], 2, "and the first view does not see the second's write");
    const reread = store.getSync(ref);
    assert.equal(reread.buffer, third.buffer, 'an unwritten mapping is still shared by later gets');
  });

  test("a sealed writer's writes after seal stay in its array, not in later gets", () => {
    using store = new ObjectStore();
    const writer = store.create(Float64Array, 100_000);
    writer.array.fill(1);
    const ref = writer.seal();
    writer.array[0] = 99;
    assert.equal(writer.array[0], 99);
    assert.equal(store.getSync(ref)[0], 1);
  });

  test('a write by the kernel into an unwritten view is refused (EFAULT), not crashed on', () => {
    using store = new ObjectStore();
    const ref = store.put(new Uint8Array(1 << 20).fill(3));
    const view = store.getSync(ref);
    const fd = openSync('/dev/zero', 'r');
    try {
      assert.throws(() => readSync(fd, view, 0, 16, 0), { code: 'EFAULT' });
      view[0] = 1; // the first write from JavaScript makes the view writable
      assert.equal(readSync(fd, view, 0, 16, 0), 16);
      assert.equal(view[0], 0);
    } finally {
      closeSync(fd);
    }
    assert.equal(store.getSync(ref)[0], 3);
  });

  test('inline objects are decoded afresh, so a caller cannot change them', async () => {
    using store = new ObjectStore();
    const ref = store.put({ small: new Int32Array([1, 2, 3]) });
    const first = store.getSync(ref);
    first.small[0] = 100;
    assert.deepEqual([...(await ref).small], [1, 2, 3]);
  });

  test('a TypedArray over a SharedArrayBuffer is stored (its bytes copied) and read back', () => {
    using store = new ObjectStore();
    const shared = new Float64Array(new SharedArrayBuffer(8 * 100_000)).fill(3);
    const ref = store.put({ shared, small: new Int32Array(new SharedArrayBuffer(8)).fill(-1) });
    const value = store.getSync(ref);
    assert.equal(value.shared.length, 100_000);
    assert.equal(value.shared[99_999], 3);
    assert.deepEqual([...value.small], [-1, -1]);
  });

  test('the mapping cache respects maxMappings', () => {
    using store = new ObjectStore({ maxMappings: 2 });
    const refs = Array.from({ length: 5 }, (_, i) => store.put(new Float64Array(20_000).fill(i)));
    refs.forEach((ref, i) => assert.equal(store.getSync(ref)[0], i));
    assert.equal(store.stats().cachedMappings, 2);
  });

  test('an ArrayBuffer in a segment comes back without a copy, with the right bytes', () => {
    using store = new ObjectStore();
    const source = new Uint8Array(200_000).map((_, i) => i & 0xff);
    const ref = store.put({ raw: source.buffer });
    const { raw } = store.getSync(ref);
    assert.ok(raw instanceof ArrayBuffer);
    assert.deepEqual(new Uint8Array(raw), source);
  });
});

describe('freeing and reference counting', () => {
  test('free unlinks the segment, later gets fail, earlier views stay valid', () => {
    using store = new ObjectStore();
    const ref = store.put(new Float64Array(1 << 20).fill(3));
    const view = store.getSync(ref);
    assert.ok(existsSync(join(store.directory, ref.id)));
    assert.equal(store.free(ref), true);
    assert.ok(!existsSync(join(store.directory, ref.id)), 'the segment file is unlinked');
    assert.throws(() => store.getSync(ref), ObjectFreedError);
    assert.equal(view[123], 3, 'a view taken before the free still reads the object');
    assert.equal(store.free(ref), false, 'a second free is a no-op');
    assert.equal(store.stats().usedBytes, 0);
  });

  test('an object is freed once no ref to it remains', async () => {
    using store = new ObjectStore();
    let id = '';
    (() => {
      id = store.put(new Float64Array(1 << 20)).id;
    })();
    assert.ok(existsSync(join(store.directory, id)));
    await eventually(() => !existsSync(join(store.directory, id)), 'the dropped object to be unlinked');
    assert.equal(store.stats().segments, 0);
  });

  test('ref.release() frees the object at once when nothing else holds it, and counts once', () => {
    using store = new ObjectStore();
    const ref = store.put(new Float64Array(1 << 20).fill(6));
    const view = store.getSync(ref);
    const held = ObjectRef.from<Float64Array>(JSON.parse(JSON.stringify(ref)));
    ref.release();
    ref.release();
    assert.ok(existsSync(join(store.directory, ref.id)), 'another ref still holds it');
    held.release();
    assert.ok(!existsSync(join(store.directory, ref.id)), 'freed without waiting for garbage collection');
    assert.equal(view[0], 6, 'views taken before stay valid');
    assert.throws(() => store.getSync(held), ObjectFreedError);
  });

  test('a ref nested in a stored object keeps its object alive until the container goes', async () => {
    using store = new ObjectStore();
    let innerId = '';
    const outer = (() => {
      const inner = store.put(new Float64Array(1 << 20).fill(9));
      innerId = inner.id;
      return store.put({ inner });
    })();
    const innerPath = join(store.directory, innerId);
    for (let i = 0; i < 5; i++) {
      globalThis.gc?.();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(existsSync(innerPath), 'the inner object outlives its dropped ref while the container holds it');
    // A ref decoded from the container counts too, for as long as it lives.
    assert.equal((await store.getSync(outer).inner)[0], 9);
    store.free(outer);
    await eventually(() => !existsSync(innerPath), 'the inner object to be freed with its container');
  });

  test('a ref rebuilt from JSON in the owner process counts like the original', async () => {
    using store = new ObjectStore();
    let json = '';
    (() => {
      json = JSON.stringify(store.put(new Float64Array(1 << 20).fill(4)));
    })();
    const again = ObjectRef.from<Float64Array>(JSON.parse(json));
    for (let i = 0; i < 5; i++) {
      globalThis.gc?.();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(store.getSync(again)[0], 4);
  });
});

describe('capacity', () => {
  test('without spilling, a put that does not fit fails with ObjectStoreFullError naming the sizes', () => {
    using store = new ObjectStore({ objectStoreMemory: 1024 * 1024, spillDirectory: false });
    store.put(new Uint8Array(600_000));
    assert.throws(
      () => store.put(new Uint8Array(600_000)),
      (error: unknown) =>
        error instanceof ObjectStoreFullError &&
        error.requested > 600_000 &&
        error.capacity === 1024 * 1024 &&
        /586 KiB/.test(error.message) &&
        /objectStoreMemory/.test(error.message),
    );
    assert.equal(readdirSync(store.directory).length, 2, 'only the first object and owner.json remain');
    assert.throws(() => store.create(Float64Array, 200_000), ObjectStoreFullError);
  });

  test('a full /dev/shm is a SharedMemoryError with ENOSPC and advice, and leaves nothing behind', (t) => {
    const mountPoint = mkdtempSync(join(tmpdir(), 'shoal-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { stdio: 'ignore' });
    } catch {
      rmSync(mountPoint, { recursive: true, force: true });
      t.skip('mounting a small tmpfs needs root; ENOSPC is not exercised here');
      return;
    }
    try {
      using store = new ObjectStore({ shmRoot: mountPoint, objectStoreMemory: 64 * 1024 * 1024, handleSignals: false });
      assert.throws(
        () => store.put(new Uint8Array(4 * 1024 * 1024)),
        (error: unknown) =>
          error instanceof SharedMemoryError &&
          error.errnoCode === 'ENOSPC' &&
          error.path.startsWith(store.directory) &&
          /--shm-size/.test(error.message),
      );
      assert.throws(() => store.create(Uint8Array, 4 * 1024 * 1024), SharedMemoryError);
      assert.deepEqual(readdirSync(store.directory), ['owner.json']);
      assert.equal(store.stats().usedBytes, 0, 'failed puts release their reservation');
    } finally {
      execFileSync('umount', [mountPoint]);
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });
});

describe('session cleanup', () => {
  test('close removes the session directory and later use fails clearly', () => {
    const store = new ObjectStore();
    const ref = store.put(new Float64Array(1 << 20));
    store.close();
    assert.ok(!existsSync(store.directory));
    assert.throws(() => store.put(1), StoreClosedError);
    assert.throws(() => store.getSync(ref), StoreClosedError);
    store.close();
  });

  test('a process that exits normally leaves no session directory', async () => {
    await using child = new Child(['own', String(1 << 20), 'exit']);
    const { directory } = await child.message<{ directory: string }>();
    const { code } = await child.exited;
    assert.equal(code, 0);
    assert.ok(!existsSync(directory));
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`a process ended by ${signal} removes its session directory`, async () => {
      await using child = new Child(['own', String(1 << 20), 'wait']);
      const { directory } = await child.message<{ directory: string }>();
      assert.ok(existsSync(directory));
      child.process.kill(signal);
      const exit = await child.exited;
      assert.equal(exit.signal, signal, 'the signal still ends the process');
      assert.ok(!existsSync(directory));
    });
  }

  test('the next session removes the directory of a SIGKILLed owner', async () => {
    await using child = new Child(['own', String(1 << 20), 'wait']);
    const { directory } = await child.message<{ directory: string }>();
    child.process.kill('SIGKILL');
    await child.exited;
    // SIGKILL leaves the directory behind (unless another process's new session swept it already).
    using store = new ObjectStore();
    assert.ok(!existsSync(directory), 'a new session sweeps it');
    assert.ok(existsSync(store.directory), 'and keeps its own');
  });

  test('an unclaimed shoal-* directory is swept after a minute; a file of that name never is', () => {
    const root = mkdtempSync(join(tmpdir(), 'shoal-sweep-'));
    try {
      const abandoned = join(root, 'shoal-abandoned');
      const fresh = join(root, 'shoal-fresh');
      const file = join(root, 'shoal-someone-elses-file');
      mkdirSync(abandoned);
      mkdirSync(fresh);
      writeFileSync(file, 'not a session');
      const longAgo = new Date(Date.now() - 5 * 60_000);
      utimesSync(abandoned, longAgo, longAgo);
      utimesSync(file, longAgo, longAgo);
      assert.deepEqual(sweepStaleSessions(root), [abandoned]);
      assert.ok(existsSync(fresh), 'a directory being created right now is left alone');
      assert.ok(existsSync(file), 'a plain file is not a session');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a directory of a live session is not swept', () => {
    using first = new ObjectStore();
    using second = new ObjectStore();
    assert.ok(existsSync(first.directory) && existsSync(second.directory));
  });
});

describe('bad input', () => {
  test('options are validated with the name of the bad one', () => {
    assert.throws(() => new ObjectStore({ objectStoreMemory: -1 }), /`objectStoreMemory`.*`-1`/);
    assert.throws(() => new ObjectStore({ bogus: 1 } as never), /Unknown store option `bogus`/);
    assert.throws(() => new ObjectStore({ sessionId: '../etc' }), /`sessionId`/);
    assert.throws(() => new ObjectStore({ shmRoot: 'relative' }), /absolute path/);
  });

  test('get, free and create reject what is not theirs', () => {
    using store = new ObjectStore();
    assert.throws(() => store.getSync({ id: 'x' } as never), /Expected an ObjectRef/);
    assert.throws(() => store.create(Array as never, 3), /TypedArray constructor/);
    assert.throws(() => store.create(Float64Array, -1), /`length`/);
    assert.throws(() => ObjectRef.from({ id: '../../etc/passwd', owner: 'x', $shoalRef: 1 }), TypeError);
  });

  test('a ref to an object of a session that ended is an ObjectFreedError', () => {
    const other = new ObjectStore();
    const ref = other.put(new Float64Array(1 << 20));
    const json = JSON.stringify(ref);
    other.close();
    using store = new ObjectStore();
    assert.throws(() => store.getSync(ObjectRef.from(JSON.parse(json))), ObjectFreedError);
  });

  test('an aborted writer leaves nothing behind', () => {
    using store = new ObjectStore();
    const writer = store.create(Uint8Array, 1 << 20);
    assert.equal(readdirSync(store.directory).length, 2);
    writer.abort();
    assert.deepEqual(readdirSync(store.directory), ['owner.json']);
    assert.equal(store.stats().usedBytes, 0);
    assert.throws(() => writer.seal(), /already aborted/);
  });
});

