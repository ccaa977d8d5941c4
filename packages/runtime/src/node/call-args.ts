// What an actor call does with its ref arguments from submission until it is sent, wherever the
// actor runs (actors.ts on this node, cluster-actors.ts on another): holds them, and counts the
// ones not settled yet, since a call is sent only once they all are.
import type { ObjectStore } from '@shoal/store';

/** A call waiting for its arguments. */
export interface WaitingCall {
  /** Its ref arguments not settled yet. */
  unsettled: number;
}

/**
 * Holds a call's refs, the nested ones (`contains`) and its arguments (`deps`); returns the first
 * argument already gone, if any (the call cannot run).
 */
export function holdCallArgs(store: ObjectStore, deps: readonly string[], contains: readonly string[]): string | undefined {
  for (const id of contains) store.hold(id);
  return deps.filter((id) => !store.hold(id))[0];
}

/** Counts in `call.unsettled` its arguments pending now, and calls `ready` each time that count drops to 0. */
export function awaitCallArgs(store: ObjectStore, call: WaitingCall, deps: readonly string[], ready: () => void): void {
  for (const id of deps) {
    if (store.status(id).state !== 'pending') continue;
    call.unsettled += 1;
    store.onSettled(id, () => {
      call.unsettled -= 1;
      if (call.unsettled === 0) ready();
    });
  }
}
