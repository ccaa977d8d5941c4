import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { expectTypeOf } from 'expect-type';
import { init, ObjectRef, remote, shutdown, store, ShoalError } from 'shoal';

test('using the store before init() starts a session with the defaults', async () => {
  const ref = store.put(new Float64Array(50_000).fill(1.5));
  const { directory } = store.stats();
  assert.ok(existsSync(directory));
  assert.equal((await ref)[49_999], 1.5);
  assert.equal((await store.get(ref)).length, 50_000);
  await shutdown();
  assert.ok(!existsSync(directory), 'shutdown removes the session directory');
  await shutdown();
});

test('init() twice with the same options is the same session; other options are an error', async () => {
  try {
    const first = await init({ objectStoreMemory: 1 << 30 });
    const second = await init({ objectStoreMemory: 1 << 30 });
    assert.equal(first.sessionId, second.sessionId);
    await assert.rejects(init({ objectStoreMemory: 1 << 29 }), (error: unknown) => {
      return error instanceof ShoalError && error.code === 'ERR_ALREADY_INITIALIZED' && /shutdown\(\)/.test(error.message);
    });
  } finally {
    await shutdown();
  }
  const third = await init({});
  assert.ok(existsSync(third.directory));
  await third.shutdown();
  assert.ok(!existsSync(third.directory));
});

test('an unknown init() option names what it was likely meant as, and every option init() takes', async () => {
  await assert.rejects(init({ cpus: 3 } as never), /Unknown init\(\) option `cpus` \(did you mean `numCpus`\?\); the options are .*`numCpus`.*`objectStoreMemory`.*`address`/);
  await assert.rejects(init({ num_cpus: 3 } as never), /did you mean `numCpus`/);
  await assert.rejects(init({ objectStoreMem: 1 } as never), /did you mean `objectStoreMemory`/);
  await assert.rejects(init({ spillDir: '/tmp' } as never), /did you mean `spillDirectory`/);
  await assert.rejects(init({ frobnicate: true } as never), (error: unknown) => error instanceof TypeError && /Unknown init\(\) option `frobnicate`; the options/.test(error.message));
  assert.throws(() => remote(() => 1, { retries: 2 } as never), /Unknown .*option `retries` \(did you mean `maxRetries`\?\)/);
});

test('await using: the session is shut down when its block ends, by a throw too', async () => {
  let directory = '';
  {
    await using session = await init({ numCpus: 0 });
    directory = session.directory;
    assert.ok(existsSync(directory));
  }
  assert.ok(!existsSync(directory), 'the block ended: the session directory is gone');
  await assert.rejects(
    (async () => {
      await using session = await init({ numCpus: 0 });
      directory = session.directory;
      throw new Error('boom');
    })(),
    /boom/,
  );
  assert.ok(!existsSync(directory), 'a throw out of the block shuts the session down too');
});

test('store.create fills in place and publishes with seal()', async () => {
  try {
    const writer = store.create(Int32Array, 100_000);
    writer.array.fill(-3);
    const ref = writer.seal();
    const array = store.getSync(ref);
    assert.ok(array instanceof Int32Array);
    assert.equal(array[99_999], -3);
    const bytes = store.create(1000);
    assert.ok(bytes.array instanceof Uint8Array && bytes.array.length === 1000);
    bytes.abort();
  } finally {
    await shutdown();
  }
});

test('types: put, get and create infer the stored value', () => {
  // These lines are checked by `tsc -p tsconfig.test.json` (npm test runs it first).
  expectTypeOf(store.put).parameter(0).toBeUnknown();
  expectTypeOf<ReturnType<typeof store.put<Float64Array>>>().toEqualTypeOf<ObjectRef<Float64Array>>();
  expectTypeOf<Awaited<ObjectRef<{ a: number }>>>().toEqualTypeOf<{ a: number }>();
  expectTypeOf(store.getSync<Float32Array>).returns.toEqualTypeOf<Float32Array>();
  expectTypeOf(store.get<string>).returns.toEqualTypeOf<Promise<string>>();
  // @ts-expect-error a plain Array is not a TypedArray constructor
  expectTypeOf(store.create).toBeCallableWith(Array, 3);
});
