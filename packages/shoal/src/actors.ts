import { ActorHandle, makeActor, argumentError, type Actor, type ActorClass, type ActorOptions } from '@shoal/runtime';
import { runtime } from './session.js';

/**
 * Turns a class into an actor class: `new` on it starts an instance in a worker process of its
 * own and returns a handle at once. Each method call on the handle runs in that process, in the
 * order made, and returns an `ObjectRef` of its result (await it, or pass it to tasks). Arguments
 * follow the task rules: a top-level ref is resolved (zero-copy), nested refs stay refs.
 *
 * The class is shipped as source, so it must not use variables from its enclosing scope (a
 * `TypeError` names any it does); it may `await import()` what it needs in its methods, and a
 * constructor that returns a promise (of `this`) is awaited before the first call.
 *
 * @example
 * ```ts
 * const Counter = actor(class Counter {
 *   n = 0;
 *   add(k: number) { return (this.n += k); }
 * });
 * const counter = new Counter();
 * counter.add(1);
 * console.log(await counter.add(2)); // 3: calls run in order
 * ```
 */
export function actor<C extends abstract new (...args: never[]) => unknown>(Class: C, options?: ActorOptions): ActorClass<C> {
  // Its caller is where the class comes from (see functionSource).
  return makeActor(Class, options, runtime, actor);
}

/**
 * The live actor named `name` (made with `actor(Class, { name })`) on this node, from any
 * process attached to it or any task.
 * @throws ActorNotFoundError (rejects) when no live actor has that name
 */
export function getActor<T = Record<string, (...args: never[]) => unknown>>(name: string): Promise<Actor<T>> {
  return runtime().getActor(name) as Promise<Actor<T>>;
}

/** Options of {@link kill}. */
export interface KillOptions {
  /**
   * `false`: kill only its process, which restarts within the actor's `maxRestarts` (state
   * reset). By default the actor is dead for good: every call then fails with ActorDiedError.
   * @default true
   */
  readonly noRestart?: boolean;
}

/**
 * Kills an actor: calls running or waiting fail with `ActorDiedError`, and so do later ones.
 * With `{ noRestart: false }` only its process is killed, and it restarts if its `maxRestarts`
 * allows.
 */
export function kill(handle: ActorHandle, options: KillOptions = {}): void {
  if (!(handle instanceof ActorHandle)) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`handle\` to be an actor handle (made by \`new\` on an actor class, or getActor), got \`${handle === null ? 'null' : typeof handle}\``);
  }
  if (options.noRestart !== undefined && typeof options.noRestart !== 'boolean') {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`noRestart\` to be a boolean, got \`${typeof options.noRestart}\``);
  }
  runtime().killActor(handle, options.noRestart ?? true);
}
