import { isDeepStrictEqual } from 'node:util';
import { ShoalError } from '@shoal/protocol';
import { ObjectStore, type StoreOptions } from '@shoal/store';

/** Options of {@link init}. */
export interface InitOptions extends StoreOptions {}

/** The running Shoal session of this process, as returned by {@link init}. */
export interface ShoalSession {
  /** The session id (names `/dev/shm/shoal-<sessionId>/`). */
  readonly sessionId: string;
  /** The session's segment directory. */
  readonly directory: string;
  /** Stops the session (same as {@link shutdown}). */
  shutdown(): Promise<void>;
}

interface Current {
  readonly store: ObjectStore;
  readonly options: InitOptions;
  readonly session: ShoalSession;
}

let current: Current | undefined;

function start(options: InitOptions): Current {
  const store = new ObjectStore(options);
  const session: ShoalSession = {
    sessionId: store.sessionId,
    directory: store.directory,
    shutdown,
  };
  return { store, options, session };
}

/**
 * Starts Shoal in this process: an object store whose large objects live in
 * `/dev/shm/shoal-<session>/` and are readable zero-copy by every process on the machine.
 * Using `store` before `init()` starts it with the defaults.
 *
 * Calling `init()` again with the same options returns the running session; with different
 * options it is an error (call {@link shutdown} first).
 *
 * @example
 * ```ts
 * import { init, store, shutdown } from 'shoal';
 * await init({ objectStoreMemory: 8 * 1024 ** 3 });
 * const ref = store.put(new Float64Array(1e8));
 * await shutdown();
 * ```
 */
export async function init(options: InitOptions = {}): Promise<ShoalSession> {
  if (current) {
    if (isDeepStrictEqual(current.options, options)) return current.session;
    throw new ShoalError(
      'ERR_ALREADY_INITIALIZED',
      'Shoal is already running in this process with other options (init() was called before, or the store ' +
        'was used, which starts it with the defaults). Call shutdown() before init() with new options.',
    );
  }
  current = start(options);
  return current.session;
}

/** Stops Shoal in this process: frees every object and removes the session directory. Idempotent. */
export async function shutdown(): Promise<void> {
  const running = current;
  current = undefined;
  running?.store.close();
}

/** The running store, starting Shoal with the defaults if needed. */
export function currentStore(): ObjectStore {
  current ??= start({});
  return current.store;
}
