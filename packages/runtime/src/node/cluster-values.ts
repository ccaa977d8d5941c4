// Values as they cross nodes, both ways: a task's or call's arguments (refs with the node that
// has them, small ones with their bytes) and how its result ended. Shared by the tasks the head
// moves between nodes (cluster-port.ts, foreign-tasks.ts) and by actor calls (cluster-actors.ts).
import { ObjectFreedError, toWireFailure, type ClusterArg, type ClusterResult, type WireArg } from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';

/** Arguments as they leave this node: refs with their owner (this node), their size and, when inline, their bytes. */
export function clusterArgsOf(store: ObjectStore, args: readonly WireArg[]): ClusterArg[] {
  return args.map((arg): ClusterArg => {
    if ('value' in arg) return { value: arg.value };
    const status = store.status(arg.ref);
    const size = status.state === 'ready' ? status.size : 0;
    const bytes = status.state === 'ready' ? status.bytes : undefined;
    return bytes ? { ref: arg.ref, owner: store.sessionId, size, bytes } : { ref: arg.ref, owner: store.sessionId, size };
  });
}

/**
 * Arguments that came from another node, made usable here: refs this node lacks are registered
 * (inline ones came with their bytes) or expected, and `fetch` is told to bring them. Returns
 * them as this node's arguments, and the ids of the refs among them.
 */
export function acceptClusterArgs(
  store: ObjectStore,
  args: readonly ClusterArg[],
  fetch: (id: string, size: number, owner: string) => void,
): { args: WireArg[]; deps: string[] } {
  const accepted: WireArg[] = [];
  const deps: string[] = [];
  for (const arg of args) {
    if ('value' in arg) {
      accepted.push({ value: arg.value });
      continue;
    }
    if (store.status(arg.ref).state === 'freed') {
      if (arg.bytes) store.register(arg.ref, { size: arg.size, bytes: arg.bytes, contains: [] });
      else {
        store.expect(arg.ref);
        fetch(arg.ref, arg.size, arg.owner);
      }
    }
    accepted.push({ ref: arg.ref });
    deps.push(arg.ref);
  }
  return { args: accepted, deps };
}

/** How object `id` (a result) ended, as another node is told: its size (and bytes, inline) and nested refs, or its failure. */
export function clusterResultOf(store: ObjectStore, id: string): ClusterResult {
  const status = store.status(id);
  if (status.state === 'ready') {
    const contains = status.contains.map((nested) => ({ id: nested, owner: store.sessionId }));
    return status.bytes ? { ok: true, size: status.size, bytes: status.bytes, contains } : { ok: true, size: status.size, contains };
  }
  return { ok: false, failure: toWireFailure(status.state === 'failed' ? status.error : new ObjectFreedError(id)) };
}
