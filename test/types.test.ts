// Type tests for the public API: checked by `tsc -p tsconfig.test.json` (npm test runs it before
// the tests). The runtime assertions only make the file a test; the types are the point.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectTypeOf } from 'expect-type';
import { get, remote, wait, type ObjectRef, type RemoteFunction, type WaitResult } from 'shoal';

/** True only when A and B are the same type. */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

test('remote() infers arguments and result', () => {
  const add = remote((a: number, b: number) => a + b);
  const addType: Equals<typeof add, RemoteFunction<[a: number, b: number], number>> = true;
  // A call returns a ref of the (awaited) result.
  type AddCall = ReturnType<typeof add>;
  const callType: Equals<AddCall, ObjectRef<number>> = true;

  // Async functions: the ref is of the resolved value, not of a promise.
  const fetchName = remote(async (id: string) => ({ id, name: 'x' }));
  const asyncType: Equals<ReturnType<typeof fetchName>, ObjectRef<{ id: string; name: string }>> = true;

  // Each argument may be a value or a ref of it.
  expectTypeOf(add).parameter(0).toEqualTypeOf<number | ObjectRef<number>>();
  const sum = remote((values: Float64Array) => values.length);
  expectTypeOf(sum).parameter(0).toEqualTypeOf<Float64Array | ObjectRef<Float64Array>>();

  // Wrong argument types and counts do not compile.
  // @ts-expect-error a string is not a number
  expectTypeOf(add).toBeCallableWith('1', 2);
  // @ts-expect-error a ref of the wrong type
  expectTypeOf(add).toBeCallableWith(null as unknown as ObjectRef<string>, 2);
  // @ts-expect-error missing argument
  expectTypeOf(add).toBeCallableWith(1);

  // options() keeps the signature.
  const limited = add.options({ numCpus: 0.5 });
  const optionsType: Equals<typeof limited, typeof add> = true;
  assert.ok(addType && callType && asyncType && optionsType);
});

test('get() and wait() carry the value types', () => {
  const ref = null as unknown as ObjectRef<Float64Array>;
  const other = null as unknown as ObjectRef<string>;
  const single = (r: ObjectRef<Float64Array>) => get(r);
  const one: Equals<ReturnType<typeof single>, Promise<Float64Array>> = true;
  const pair = (refs: readonly [ObjectRef<Float64Array>, ObjectRef<string>]) => get(refs);
  const many: Equals<Awaited<ReturnType<typeof pair>>, [Float64Array, string]> = true;
  const waited = (refs: ObjectRef<number>[]) => wait(refs);
  const waitType: Equals<Awaited<ReturnType<typeof waited>>, WaitResult<number>> = true;
  void ref;
  void other;
  assert.ok(one && many && waitType);
});
