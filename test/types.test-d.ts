// Type tests for the public API: checked by `tsc -p tsconfig.test.json` (npm test runs it before
// the tests), never run. A wrong type fails the type check.
import { expectTypeOf } from 'expect-type';
import { actor, get, getActor, remote, store, wait, type Actor, type ActorClass, type ActorMethod, type ObjectRef, type ObjectStream, type RemoteFunction, type Storable, type WaitResult } from 'shoal';

// remote() infers arguments and result.
const add = remote((a: number, b: number) => a + b);
expectTypeOf(add).toEqualTypeOf<RemoteFunction<[a: number, b: number], number>>();
// A call returns a ref of the (awaited) result.
expectTypeOf<ReturnType<typeof add>>().toEqualTypeOf<ObjectRef<number>>();
// Async functions: the ref is of the resolved value, not of a promise.
const fetchName = remote(async (id: string) => ({ id, name: 'x' }));
expectTypeOf<ReturnType<typeof fetchName>>().toEqualTypeOf<ObjectRef<{ id: string; name: string }>>();
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
expectTypeOf(add.options({ numCpus: 0.5 })).toEqualTypeOf<typeof add>();

// get() and wait() carry the value types.
expectTypeOf((r: ObjectRef<Float64Array>) => get(r)).returns.toEqualTypeOf<Promise<Float64Array>>();
expectTypeOf((refs: readonly [ObjectRef<Float64Array>, ObjectRef<string>]) => get(refs)).returns.resolves.toEqualTypeOf<[Float64Array, string]>();
expectTypeOf((refs: ObjectRef<number>[]) => wait(refs)).returns.resolves.toEqualTypeOf<WaitResult<number>>();

// store.create hands out the typed array it was asked for, and seal() a ref of it.
const writer = store.create(Int32Array, 100_000);
expectTypeOf(writer.array).toEqualTypeOf<Int32Array<ArrayBuffer>>();
expectTypeOf<Awaited<ReturnType<typeof writer.seal>>>().toEqualTypeOf<Int32Array<ArrayBuffer>>();

// actor(): `new` returns a handle whose methods take RemoteArgs and return refs of awaited results.
class Model {
  constructor(readonly size: number) {}
  score(input: Float64Array, k: number): number {
    return input.length * k;
  }
  async load(name: string): Promise<{ name: string }> {
    return { name };
  }
  async *chunks(n: number): AsyncGenerator<Float64Array> {
    for (let i = 0; i < n; i++) yield new Float64Array(n);
  }
}
const RemoteModel = actor(Model);
expectTypeOf(RemoteModel).toEqualTypeOf<ActorClass<typeof Model>>();
const model = new RemoteModel(10);
expectTypeOf(model).toEqualTypeOf<Actor<Model>>();
expectTypeOf(model.score).toEqualTypeOf<ActorMethod<[input: Float64Array, k: number], number>>();
expectTypeOf(model.score).parameters.toEqualTypeOf<[input: Float64Array | ObjectRef<Float64Array>, k: number | ObjectRef<number>]>();
expectTypeOf(model.score).returns.toEqualTypeOf<ObjectRef<number>>();
// A method's options() keeps its signature.
expectTypeOf(model.score.options({ signal: AbortSignal.timeout(1) })).toEqualTypeOf<(input: Float64Array | ObjectRef<Float64Array>, k: number | ObjectRef<number>) => ObjectRef<number>>();
// @ts-expect-error an actor call takes only a signal
void model.score.options({ numCpus: 1 });
expectTypeOf(model.load).returns.toEqualTypeOf<ObjectRef<{ name: string }>>();
// An async generator method streams refs of its items.
expectTypeOf(model.chunks).returns.toEqualTypeOf<ObjectStream<Float64Array>>();
// Fields are not reachable through a handle.
// @ts-expect-error `size` is a field, not a method
void model.size;
// @ts-expect-error constructor arguments are checked
void new RemoteModel('ten');
expectTypeOf(RemoteModel.options({ name: 'model' })).toEqualTypeOf<typeof RemoteModel>();
expectTypeOf(getActor<Model>('model')).resolves.toEqualTypeOf<Actor<Model>>();

// An async generator function streams refs of its items.
const produce = remote(async function* (n: number) {
  for (let i = 0; i < n; i++) yield i;
});
expectTypeOf<ReturnType<typeof produce>>().toEqualTypeOf<ObjectStream<number>>();
// Iterating a stream gives values; refs() gives wrapped refs.
void (async () => {
  for await (const value of produce(3)) expectTypeOf(value).toEqualTypeOf<number>();
  for await (const item of produce(3).refs()) expectTypeOf(item.ref).toEqualTypeOf<ObjectRef<number>>();
})();

// store.put takes what can be stored, and infers its type.
interface Tree {
  value: number;
  children: Tree[];
}
class Point {
  x = 1;
  y = 2;
}
declare const tree: Tree;
declare const parsed: unknown;
expectTypeOf(store.put({ weights: new Float32Array(4), names: ['a'], at: new Date(), ids: new Set([1n]) })).toEqualTypeOf<
  ObjectRef<{ weights: Float32Array<ArrayBuffer>; names: string[]; at: Date; ids: Set<bigint> }>
>();
expectTypeOf(store.put(tree)).toEqualTypeOf<ObjectRef<Tree>>();
expectTypeOf(store.put(new Map([['a', Buffer.alloc(1)]]))).toEqualTypeOf<ObjectRef<Map<string, Buffer<ArrayBuffer>>>>();
expectTypeOf(store.put([1, 'a'] as const)).toEqualTypeOf<ObjectRef<readonly [1, 'a']>>();
// Types are structural: an instance with fields only passes the check (and is refused when stored).
expectTypeOf(store.put(new Point())).toEqualTypeOf<ObjectRef<Point>>();
expectTypeOf(store.put(parsed)).toEqualTypeOf<ObjectRef<unknown>>();
expectTypeOf(store.put({ inner: add(1, 2), model, error: new RangeError('x') })).toEqualTypeOf<
  ObjectRef<{ inner: ObjectRef<number>; model: Actor<Model>; error: RangeError }>
>();
// What cannot be stored does not compile.
// @ts-expect-error a function
store.put(() => 1);
// @ts-expect-error a function inside
store.put({ handler: (x: number) => x });
// @ts-expect-error a class instance with methods
store.put(new Model(1));
// @ts-expect-error a symbol
store.put(Symbol('id'));
// @ts-expect-error a promise (await it first)
store.put({ pending: Promise.resolve(1) });
// @ts-expect-error a function as a Map value
store.put(new Map([['f', () => 1]]));
// @ts-expect-error putNamed checks its value the same way
void store.putNamed('handlers', { on: () => 1 });
expectTypeOf(store.putNamed('items', store.put(new Float64Array(1)))).resolves.toHaveProperty('ref').toEqualTypeOf<ObjectRef<Float64Array<ArrayBuffer>>>();
// Storable names the reason where a part cannot be stored.
expectTypeOf<Storable<{ f: () => void }>['f']>().toEqualTypeOf<import('shoal').NotStorable<'a function cannot be stored (to run code elsewhere, use remote(fn))'>>();

// A generic function keeps its type through an instantiation expression. (TypeScript carries a
// type parameter itself through only to a result that is a bare function type, and a remote
// function also has options() and remoteName.)
const identity = <T>(value: T): T => value;
expectTypeOf(remote(identity<Float64Array>)).toEqualTypeOf<RemoteFunction<[value: Float64Array], Float64Array>>();
const firstOf = <T extends readonly unknown[]>(items: T): T[0] => items[0];
expectTypeOf(remote(firstOf<string[]>)).returns.toEqualTypeOf<ObjectRef<string>>();
