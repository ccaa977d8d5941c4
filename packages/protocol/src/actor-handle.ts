import { ObjectRef } from './object-ref.js';

/** What a handle knows of its actor; the same in every process the handle reaches. */
export interface ActorInfo {
  /**
   * The actor's lifetime object: its id is the actor's id, and the actor lives while refs to it
   * do (handles hold one, counted like any ref) unless it is detached.
   */
  readonly ref: ObjectRef;
  /** The class's name (for messages). */
  readonly className: string;
  /** The methods a handle offers: the class's, found when it was turned into an actor (`*name` for async generator methods). */
  readonly methods: readonly string[];
}

/** Options of one call of an actor's method: `handle.method.options({ signal })(...args)`. */
export interface ActorCallOptions {
  /**
   * Cancels the call when the signal aborts, as `cancel(ref)` does: a call still queued for the
   * actor is dropped (`TaskCancelledError`); one the actor runs already goes on to its end.
   */
  readonly signal?: AbortSignal;
}

/** What a handle needs from the process it lives in: the runtime installs it. */
export interface ActorHandleHooks {
  /** Submits a call of `method` on the actor and returns the ref of its result at once. */
  call(handle: ActorHandle, method: string, args: readonly unknown[], options: ActorCallOptions | undefined): unknown;
  /** Checks the options given to `handle.method.options()`. @throws TypeError naming a bad one. */
  callOptions(options: unknown): ActorCallOptions;
}

let hooks: ActorHandleHooks | undefined;

/** Installs the process's actor hooks (done by the runtime; not for application code). */
export function setActorHandleHooks(next: ActorHandleHooks | undefined): void {
  hooks = next;
}

/** The key of a handle's {@link ActorInfo}: a symbol, so no method name can collide with it. */
export const ACTOR_INFO: unique symbol = Symbol.for('shoal.actor');

/** Method names a handle never offers: `then` would make every handle awaitable. */
export const RESERVED_METHOD_NAMES: ReadonlySet<string> = new Set(['then', 'constructor']);

/**
 * A handle to an actor: one method per method of its class, each submitting a call and returning
 * an `ObjectRef` of the result at once. Handles travel like refs (in task arguments, in stored
 * objects, to other actors) and keep the actor alive while any exists.
 *
 * @example
 * ```ts
 * const Counter = actor(class { n = 0; add(k: number) { return (this.n += k); } });
 * const counter = new Counter();
 * console.log(await counter.add(2)); // 2
 * ```
 */
export class ActorHandle {
  declare readonly [ACTOR_INFO]: ActorInfo;

  /** @internal Handles are made by `actor()`, `getActor()`, and by decoding a stored one. */
  constructor(info: ActorInfo) {
    Object.defineProperty(this, ACTOR_INFO, { value: info });
    for (const entry of info.methods) {
      // `*name`: an async generator method, whose calls stream (the runtime's hook knows).
      const method = entry.startsWith('*') ? entry.slice(1) : entry;
      if (RESERVED_METHOD_NAMES.has(method)) continue;
      const call = (options: ActorCallOptions | undefined, args: unknown[]) => {
        if (!hooks) throw new Error(`Actor ${info.className}: Shoal is not running in this process, so its methods cannot be called here`);
        return hooks.call(this, method, args, options);
      };
      Object.defineProperty(this, method, {
        value: Object.assign((...args: unknown[]) => call(undefined, args), {
          options: (options: ActorCallOptions) => {
            const checked = hooks ? hooks.callOptions(options) : options;
            return (...args: unknown[]) => call(checked, args);
          },
        }),
        enumerable: false,
      });
    }
  }

  /** The actor's id (its lifetime object's). */
  static id(handle: ActorHandle): string {
    return handle[ACTOR_INFO].ref.id;
  }

  /** For `console.log` and `util.inspect`. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `ActorHandle<${this[ACTOR_INFO].className} ${this[ACTOR_INFO].ref.id}>`;
  }
}
