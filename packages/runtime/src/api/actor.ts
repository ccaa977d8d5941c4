import { RESERVED_METHOD_NAMES, argumentError, type ActorCallOptions, type ActorHandle, type ObjectRef } from '@shoal/protocol';
import { functionSource } from './function-source.js';
import { resolveActorOptions, type ActorOptions } from '../options.js';
import type { RemoteArgs } from './remote.js';
import type { Runtime } from './runtime.js';
import { isAsyncGeneratorFunction, type ObjectStream } from './stream.js';

/** What a call of an actor's method returns: a ref of its result, or for an async generator a stream of refs. */
export type ActorMethodResult<R> = R extends AsyncGenerator<infer Y, unknown, unknown> ? ObjectStream<Awaited<Y>> : ObjectRef<Awaited<R>>;

/**
 * A handle to an actor of class `T`: each method `(...a: A) => R` becomes
 * `(...a: RemoteArgs<A>) => ObjectRef<Awaited<R>>` (an async generator method returns an
 * `ObjectStream` of its items). Fields are not reachable: the instance lives in another process.
 */
export type Actor<T> = ActorHandle & {
  readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? (K extends 'then' | 'constructor' ? never : K) : never]: T[K] extends (
    ...args: infer A
  ) => infer R
    ? ActorMethod<A, R>
    : never;
};

/** A method of an actor handle: each call submits a call of the actor's method. */
export interface ActorMethod<A extends readonly unknown[], R> {
  (...args: RemoteArgs<A>): ActorMethodResult<R>;
  /**
   * The method with options for the calls made through it, e.g.
   * `counter.add.options({ signal })(1)`.
   * @throws TypeError naming an unknown or bad option.
   */
  options(options: ActorCallOptions): (...args: RemoteArgs<A>) => ActorMethodResult<R>;
}

/** A class turned into an actor class by {@link actor}: `new` makes an actor and returns its handle at once. */
export interface ActorClass<C extends abstract new (...args: never[]) => unknown> {
  new (...args: RemoteArgs<ConstructorParameters<C>>): Actor<InstanceType<C>>;
  /** The same actor class with other options, e.g. `.options({ name: 'counter' })`. */
  options(options: ActorOptions): ActorClass<C>;
  /** The class's name. */
  readonly actorName: string;
}

/**
 * The methods of `Class` a handle offers: every function-valued property of its prototype chain
 * below Object.prototype (not getters, not the constructor), `*name` for async generators.
 * @throws TypeError for a method named `then` (a handle must not be awaitable).
 */
export function methodsOf(Class: Function): string[] {
  const methods = new Set<string>();
  for (let proto: object | null = Class.prototype as object; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === 'constructor' || methods.has(key) || methods.has(`*${key}`)) continue;
      const value = Object.getOwnPropertyDescriptor(proto, key)?.value as unknown;
      if (typeof value !== 'function') continue;
      if (RESERVED_METHOD_NAMES.has(key)) {
        throw argumentError('ERR_NOT_REMOTABLE', `actor(${Class.name}): a method named \`${key}\` would make every handle awaitable (a thenable); rename it`);
      }
      methods.add(isAsyncGeneratorFunction(value) ? `*${key}` : key);
    }
  }
  return [...methods];
}

/**
 * Turns a class into an actor class: `new` on it starts an instance in a worker process of its
 * own and returns a handle at once, whose methods each submit a call and return an `ObjectRef`
 * of its result. The class is shipped as source, so it must not use variables from its
 * enclosing scope (a TypeError names any it does).
 *
 * @param getRuntime the process's runtime, found (or started) at creation time.
 */
export function makeActor<C extends abstract new (...args: never[]) => unknown>(
  Class: C,
  options: ActorOptions | undefined,
  getRuntime: () => Runtime,
  calledThrough: Function = makeActor,
): ActorClass<C> {
  const cls = functionSource(Class, 'actor', calledThrough, 'class');
  const methods = methodsOf(Class);
  const resolved = resolveActorOptions(options);
  function RemoteActor(this: unknown, ...args: unknown[]): ActorHandle {
    if (new.target === undefined) throw argumentError('ERR_INVALID_ARGUMENT', `Actor class ${cls.name} must be called with \`new\``);
    return getRuntime().createActor(cls, methods, args, resolved);
  }
  Object.defineProperty(RemoteActor, 'name', { value: cls.name });
  return Object.assign(RemoteActor, {
    options: function withOptions(next: ActorOptions): ActorClass<C> {
      return makeActor(Class, { ...options, ...next }, getRuntime, withOptions);
    },
    actorName: cls.name,
  }) as unknown as ActorClass<C>;
}
