// Integration tests of finding 6 of issue 18 for the writers whose put is synchronous: a worker's
// or an attached program's put reserves room in the node's capacity page before its segment
// file is created, so a put that does not fit fails at once with ObjectStoreFullError and
// /dev/shm never holds more than the capacity; room a process held when it died comes back.
import assert from 'node:assert/strict';
import { readdirSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fork } from 'node:child_process';
import { get, remote, store, type ShoalSession } from 'shoal';
import { cleanUp, markerDirectory, nextFile, remember, start, until } from './runtime-helpers.js';

afterEach(cleanUp);

const MiB = 1024 ** 2;
const CHILD = fileURLToPath(new URL('./fixtures/capacity-child.ts', import.meta.url));
const FULL = /^ObjectStoreFullError: Cannot store an object of /;

/**
 * Every segment file created in the session directory while it is watched, even one removed at
 * once (inotify reports each creation). `settled()` waits until the events of everything done
 * before it were seen: they arrive in order, so a marker file's event comes after them.
 */
class CreatedFiles implements Disposable {
  readonly names = new Set<string>();
  readonly #directory: string;
  readonly #watcher: FSWatcher;
  #marks = 0;

  constructor(session: ShoalSession) {
    this.#directory = session.directory;
    this.#watcher = watch(session.directory, (_event, name) => {
      if (name && !name.startsWith('node') && name !== 'owner.json') this.names.add(name);
    });
  }

  async settled(): Promise<string[]> {
    const mark = `node.mark-${++this.#marks}`;
    let seen = false;
    const onMark = (_event: string, name: string | null) => (seen ||= name === mark);
    this.#watcher.on('change', onMark);
    writeFileSync(join(this.#directory, mark), '');
    await until(() => seen, 'the session directory’s events');
    this.#watcher.off('change', onMark);
    return [...this.names];
  }

  [Symbol.dispose](): void {
    this.#watcher.close();
  }
}

/** A process attached to the session running fixtures/capacity-child.ts; its first report. */
function attached(session: ShoalSession, args: string[]) {
  const child = fork(CHILD, [...args, 'shoal-test-child'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, SHOAL_ADDRESS: session.address },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  remember(child.pid!);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const report = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('message', (message) => resolve(message as Record<string, unknown>));
    child.once('exit', (code, signal) => reject(new Error(`the attached process exited (${code}, ${signal}) before reporting`)));
  });
  return { child, exited, report };
}

test('a worker’s 100 MiB put into a 64 MiB store fails with ObjectStoreFullError before any file is created', { timeout: 60_000 }, async () => {
  const session = await start({ numCpus: 1, objectStoreMemory: 64 * MiB });
  using files = new CreatedFiles(session);
  const putBig = remote(async () => {
    const { store } = await import('shoal');
    try {
      store.put(new Uint8Array(100 * 1024 * 1024));
      return 'stored';
    } catch (error) {
      return `${(error as Error).name}: ${(error as Error).message}`;
    }
  });
  assert.match(await get(putBig()), FULL, 'the put itself throws, in the worker');
  assert.deepEqual(await files.settled(), [], 'the session directory never held a file for it');
  assert.equal(store.stats().usedBytes, 0);
});

test('two workers putting 40 MiB each into a 64 MiB store at once: one is stored, one fails, never over', { timeout: 60_000 }, async () => {
  const session = await start({ numCpus: 2, objectStoreMemory: 64 * MiB });
  using files = new CreatedFiles(session);
  const directory = markerDirectory();
  const putForty = remote(async (dir: string) => {
    const { readdirSync, writeFileSync } = await import('node:fs');
    const { store } = await import('shoal');
    // Both workers reach each stage before either goes on: the puts are made at the same time,
    // and the stored one is still held while the other tries.
    const meet = async (stage: string) => {
      writeFileSync(`${dir}/${stage}-${process.pid}`, '');
      while (readdirSync(dir).filter((name) => name.startsWith(stage)).length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    const data = new Uint8Array(40 * 1024 * 1024).fill(1);
    await meet('ready');
    let outcome = 'stored';
    let ref: unknown;
    try {
      ref = store.put(data);
    } catch (error) {
      outcome = `${(error as Error).name}: ${(error as Error).message}`;
    }
    await meet('tried');
    return ref === undefined ? outcome : 'stored';
  });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, store.stats().usedBytes)), 2);
  let outcomes: string[];
  try {
    outcomes = await get([putForty(directory), putForty(directory)]);
  } finally {
    clearInterval(sampler);
  }
  assert.equal(outcomes.filter((outcome) => outcome === 'stored').length, 1, `one put is stored (${outcomes.join(' | ')})`);
  assert.match(outcomes.find((outcome) => outcome !== 'stored') ?? '', FULL, 'the other fails with ObjectStoreFullError');
  assert.equal((await files.settled()).length, 1, 'only one 40 MiB file was ever created');
  assert.ok(peak <= 64 * MiB, `the books never passed the capacity (peak ${peak} bytes)`);
  assert.equal(readdirSync(directory).length, 4, 'both workers reached both stages');
});

test('a worker SIGKILLed while holding a reservation gives its bytes back', { timeout: 60_000 }, async () => {
  await start({ numCpus: 1, objectStoreMemory: 64 * MiB });
  const directory = markerDirectory();
  const hold = remote(
    async (dir: string) => {
      const { writeFileSync } = await import('node:fs');
      const { store } = await import('shoal');
      const writer = store.create(40 * 1024 * 1024);
      // Reachable until the worker dies: a writer collected unsealed gives its room back, and
      // this function's frame, parked on a promise nothing resolves, is garbage itself.
      (globalThis as { heldWriter?: unknown }).heldWriter = writer;
      writeFileSync(`${dir}/holding-${process.pid}`, '');
      // Until the test kills this worker, with the writer unsealed.
      await new Promise(() => {});
      return writer.size;
    },
    { maxRetries: 0 },
  );
  const result = get(hold(directory));
  result.catch(() => {});
  const pid = Number((await nextFile(directory, 'holding-')).slice('holding-'.length));
  remember(pid);
  assert.ok(store.stats().usedBytes >= 40 * MiB, `the unsealed create holds its room (${store.stats().usedBytes} bytes used)`);
  process.kill(pid, 'SIGKILL');
  await assert.rejects(result);
  await until(() => store.stats().usedBytes === 0, 'the dead worker’s room to be free again');
  assert.equal(store.getSync(store.put(new Uint8Array(60 * MiB).fill(2)))[0], 2, 'the room can be used again');
});

test('an attached program: a put that does not fit fails before its file exists; its reservation comes back when it is killed', { timeout: 60_000 }, async () => {
  const session = await start({ numCpus: 0, objectStoreMemory: 64 * MiB });
  using files = new CreatedFiles(session);
  const putter = attached(session, ['put', '100']);
  assert.match(String((await putter.report).outcome), FULL);
  await putter.exited;
  assert.deepEqual(await files.settled(), [], 'no file was created for the refused put');

  const holder = attached(session, ['hold', '40']);
  assert.ok(Number((await holder.report).holding) >= 40 * MiB);
  assert.ok(store.stats().usedBytes >= 40 * MiB, `the attached program's create holds its room (${store.stats().usedBytes} bytes used)`);
  holder.child.kill('SIGKILL');
  await holder.exited;
  await until(() => store.stats().usedBytes === 0, 'the killed program’s room to be free again');
});
