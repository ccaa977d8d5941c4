import { isValidId } from './ids.js';
import { argumentError } from './errors/argument-error.js';

declare const valueType: unique symbol;

/** The plain, JSON-safe form of an {@link ObjectRef} (what `JSON.stringify(ref)` produces). */
export interface ObjectRefJSON {
  /** Marks the object as a ref when it travels as JSON. */
  readonly $shoalRef: 1;
  readonly id: string;
  readonly owner: string;
}

/**
 * What an ObjectRef needs from the process it lives in: the store (or runtime) installs these.
 * `track` sees every ref instance made in the process (for reference counting); `get` resolves
 * one to its value.
 */
export interface ObjectRefHooks {
  track(ref: ObjectRef): void;
  /** The ref was released by hand (`ref.release()`): count it out now. */
  untrack(ref: ObjectRef): void;
  get(ref: ObjectRef): Promise<unknown>;
}

let hooks: ObjectRefHooks | undefined;
/** The owner of the last ref made, known to be a valid id. */
let lastOwner: string | undefined;

/**
 * Installs the process's ref hooks (done by the object store or a node client; not for
 * application code). Returns a function that removes them again, only if they are still the
 * ones installed: closing one store must not cut off the hooks another installed since.
 */
export function setObjectRefHooks(next: ObjectRefHooks | undefined): () => void {
  hooks = next;
  return () => {
    if (hooks === next) hooks = undefined;
  };
}

/**
 * A reference to an immutable object in Shoal's object store. Refs are small, serializable
 * (nest them in other objects or task arguments, or `JSON.stringify` them) and awaitable:
 * `await ref` fetches the value.
 *
 * Because a ref is `PromiseLike`, returning one from an `async` function or passing it to
 * `Promise.resolve` fetches its value; wrap it (`{ ref }`) to pass the ref itself along.
 *
 * @example
 * ```ts
 * const ref = store.put(new Float64Array(1e6).fill(1));
 * const array = await ref; // zero-copy view of the stored array
 * ```
 */
export class ObjectRef<T = unknown> implements PromiseLike<T> {
  declare readonly [valueType]?: T;

  /** The object's id, unique within the cluster. */
  readonly id: string;
  /** The session (node) whose store holds the object. */
  readonly owner: string;

  /**
   * @internal Refs are made by the store (`store.put`), by tasks, or by {@link ObjectRef.from}.
   * @throws TypeError when `id` or `owner` is not an id: a ref's id becomes a file name, so a
   * forged one (`../../x`) must never reach the store.
   */
  constructor(id: string, owner: string) {
    checkId('id', id);
    // The owner is nearly always this process's session: checked once, not at every ref.
    if (owner !== lastOwner) {
      checkId('owner', owner);
      lastOwner = owner;
    }
    this.id = id;
    this.owner = owner;
    hooks?.track(this);
  }

  /**
   * Rebuilds a ref from its JSON form, e.g. one handed to another process by hand.
   * @throws TypeError when `json` is not a ref's JSON form.
   */
  static from<T = unknown>(json: unknown): ObjectRef<T> {
    const j = json as Partial<ObjectRefJSON> | null;
    if (
      j === null ||
      typeof j !== 'object' ||
      j.$shoalRef !== 1 ||
      !isValidId(j.id) ||
      !isValidId(j.owner)
    ) {
      throw argumentError('ERR_INVALID_ARGUMENT', `Expected the JSON form of an ObjectRef ({ $shoalRef: 1, id, owner }), got \`${safeString(json)}\``);
    }
    return new ObjectRef<T>(j.id, j.owner);
  }

  /** Whether `value` is an ObjectRef. */
  static isObjectRef(value: unknown): value is ObjectRef {
    return value instanceof ObjectRef;
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    const pending = hooks
      ? (hooks.get(this) as Promise<T>)
      : Promise.reject(
          new Error(`Cannot get object ${this.id}: no Shoal object store is running in this process. Call init() first.`),
        );
    return pending.then(onfulfilled, onrejected);
  }

  /**
   * Says this process is done with this ref now, rather than whenever the garbage collector
   * notices: the object is freed as soon as nothing else holds it. Views already taken stay
   * valid; getting through this ref afterwards may fail with `ObjectFreedError`. Idempotent.
   *
   * @example
   * ```ts
   * await store.putNamed('items', ref);
   * ref.release(); // the name holds it now; this process does not need to
   * ```
   */
  release(): void {
    hooks?.untrack(this);
  }

  toJSON(): ObjectRefJSON {
    return { $shoalRef: 1, id: this.id, owner: this.owner };
  }

  toString(): string {
    return `ObjectRef(${this.id})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `ObjectRef { id: '${this.id}' }`;
  }
}

function checkId(field: string, value: unknown): void {
  if (!isValidId(value)) {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${field}\` to be an id of 1-64 characters of [0-9A-Za-z_-], got \`${safeString(value)}\``);
  }
}

function safeString(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 120 ? `${text.slice(0, 117)}...` : text;
  } catch {
    return String(value);
  }
}
