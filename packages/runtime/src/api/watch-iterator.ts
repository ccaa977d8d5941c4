import type { NamedVersion } from './runtime.js';

/**
 * An async iterator of a name's versions: `subscribe` starts delivering (and returns how to
 * stop); versions that arrive while nobody awaits are queued, and only the newest matters to a
 * reader, so older queued ones are dropped.
 */
export function watchIterator<T>(
  name: string,
  subscribe: (push: (version: NamedVersion<T>) => void) => () => void,
  onWaiting?: (waiting: boolean) => void,
): AsyncIterableIterator<NamedVersion<T>> {
  let latest: NamedVersion<T> | undefined;
  let waiter: ((result: IteratorResult<NamedVersion<T>>) => void) | undefined;
  let done = false;
  const stop = subscribe((version) => {
    if (done) return;
    if (waiter) {
      const wake = waiter;
      waiter = undefined;
      onWaiting?.(false);
      wake({ value: version, done: false });
    } else {
      latest = version;
    }
  });
  const finish = (): IteratorResult<NamedVersion<T>> => {
    if (!done) {
      done = true;
      stop();
      if (waiter) {
        onWaiting?.(false);
        waiter({ value: undefined, done: true });
        waiter = undefined;
      }
    }
    return { value: undefined, done: true };
  };
  void name;
  return {
    next: () => {
      if (done) return Promise.resolve({ value: undefined, done: true });
      if (latest) {
        const value = latest;
        latest = undefined;
        return Promise.resolve({ value, done: false });
      }
      onWaiting?.(true);
      return new Promise((resolve) => (waiter = resolve));
    },
    return: async () => finish(),
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
