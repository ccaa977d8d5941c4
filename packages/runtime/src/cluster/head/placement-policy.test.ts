import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterArg, ClusterTask } from '@shoal/protocol';
import { placeTask, roomOf, type MemberSnapshot, type Placement, type PlacementSnapshot } from './placement-policy.js';

type Resources = Record<string, number>;

/** A member with `resources`, `available` of them free at its report, and runs sent since. */
function member(nodeId: string, resources: Resources, available: Resources = resources, sent: Resources[] = [], queuedTasks = 0): MemberSnapshot {
  return { nodeId, hostname: `host-${nodeId}`, resources, available, sentSinceReport: sent.map((demand) => ({ demand })), queuedTasks };
}

function task(options: { numCpus?: number; resources?: Resources; args?: ClusterArg[] } = {}): ClusterTask {
  return {
    returnId: 'return1xxxxxxxxxxxxxxx',
    fn: { hash: 'h', name: 'work', source: '() => 1' },
    args: options.args ?? [],
    options: { numCpus: options.numCpus ?? 1, resources: options.resources ?? {}, maxRetries: 1, retryExceptions: false, timeoutMs: null },
  };
}

/** A ref argument of `size` bytes owned by `owner`. */
const ref = (id: string, owner: string, size: number): ClusterArg => ({ ref: id, owner, size });

interface Row {
  readonly name: string;
  readonly members: MemberSnapshot[];
  /** Object id → nodes holding a copy. */
  readonly copies?: Record<string, string[]>;
  readonly task: ClusterTask;
  readonly origin?: string;
  readonly retry?: boolean;
  /** An infeasible decision's reason is matched against a pattern. */
  readonly expected: Exclude<Placement, { kind: 'infeasible' }> | { readonly kind: 'infeasible'; readonly code: string; readonly reason: RegExp };
}

const rows: Row[] = [
  {
    name: 'the only other node with room',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1 })],
    task: task(),
    expected: { kind: 'placed', nodeId: 'b' },
  },
  {
    name: 'the origin is not a candidate, even with room',
    members: [member('a', { CPU: 4 }), member('b', { CPU: 1 })],
    task: task(),
    expected: { kind: 'placed', nodeId: 'b' },
  },
  {
    name: 'argument bytes decide over free CPUs',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 8 }), member('c', { CPU: 1 })],
    copies: { x: ['c'] },
    task: task({ args: [ref('x', 'a', 1000)] }),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'the owner of an argument counts as holding it',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 8 }), member('c', { CPU: 1 })],
    task: task({ args: [ref('x', 'c', 1000)] }),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'more bytes win over more arguments',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1 }), member('c', { CPU: 1 })],
    copies: { x: ['b'], y: ['b'], z: ['c'] },
    task: task({ args: [ref('x', 'a', 10), ref('y', 'a', 10), ref('z', 'a', 100)] }),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'inline values weigh nothing',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1 }), member('c', { CPU: 2 })],
    task: task({ args: [{ value: new Uint8Array(100) }] }),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'equal bytes: the most free CPUs',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 4 }, { CPU: 2 }), member('c', { CPU: 4 }, { CPU: 3 })],
    copies: { x: ['b', 'c'] },
    task: task({ args: [ref('x', 'a', 1000)] }),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'a full tie: the node that joined first',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 2 }), member('c', { CPU: 2 })],
    task: task(),
    expected: { kind: 'placed', nodeId: 'b' },
  },
  {
    name: 'a node holding the argument but without room is passed over',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1 }), member('c', { CPU: 1 }, { CPU: 0 })],
    copies: { x: ['c'] },
    task: task({ args: [ref('x', 'a', 1000)] }),
    expected: { kind: 'placed', nodeId: 'b' },
  },
  {
    name: 'room already taken by runs sent since the last report',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 2 }, { CPU: 2 }, [{ CPU: 1 }, { CPU: 1 }]), member('c', { CPU: 1 })],
    task: task(),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'runs sent since the report leave part of the room',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 4 }, { CPU: 4 }, [{ CPU: 1 }]), member('c', { CPU: 4 }, { CPU: 2 })],
    task: task(),
    expected: { kind: 'placed', nodeId: 'b' },
  },
  {
    name: 'fractional CPUs add up despite floating point (ten 0.1 CPU tasks fill one CPU)',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1 }, { CPU: 1 }, Array.from({ length: 9 }, () => ({ CPU: 0.1 })))],
    task: task({ numCpus: 0.1 }),
    expected: { kind: 'placed', nodeId: 'b' },
  },
  {
    name: 'fractional CPUs: an eleventh 0.1 CPU task does not fit',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1 }, { CPU: 1 }, Array.from({ length: 10 }, () => ({ CPU: 0.1 })))],
    task: task({ numCpus: 0.1 }),
    expected: { kind: 'declined' },
  },
  {
    name: 'a custom resource only one node has',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 8 }), member('c', { CPU: 1, gpu: 2 })],
    task: task({ resources: { gpu: 1 } }),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'a custom resource taken by a run sent since the report',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1, gpu: 1 }, { CPU: 1, gpu: 1 }, [{ CPU: 0, gpu: 1 }]), member('c', { CPU: 1, gpu: 1 })],
    task: task({ resources: { gpu: 1 } }),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'a task asking for no CPU fits a node with none free',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1, disk: 1 }, { CPU: 0, disk: 1 })],
    task: task({ numCpus: 0, resources: { disk: 1 } }),
    expected: { kind: 'placed', nodeId: 'b' },
  },
  {
    name: 'no room anywhere and the origin could run it: declined',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1 }, { CPU: 0 })],
    task: task(),
    expected: { kind: 'declined' },
  },
  {
    name: 'no room anywhere, only a busy node could run it: the least loaded of those',
    members: [
      member('a', { CPU: 1 }, { CPU: 0 }),
      member('b', { CPU: 1, gpu: 1 }, { CPU: 0, gpu: 0 }, [], 3),
      member('c', { CPU: 1, gpu: 1 }, { CPU: 0, gpu: 0 }, [], 1),
      member('d', { CPU: 8 }),
    ],
    task: task({ resources: { gpu: 1 } }),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'the load of the fallback counts runs sent since the report',
    members: [
      member('a', { CPU: 1 }, { CPU: 0 }),
      member('b', { CPU: 1, gpu: 1 }, { CPU: 1, gpu: 1 }, [{ CPU: 1, gpu: 1 }, { CPU: 1, gpu: 1 }], 0),
      member('c', { CPU: 1, gpu: 1 }, { CPU: 0, gpu: 0 }, [], 1),
    ],
    task: task({ resources: { gpu: 1 } }),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'the fallback ties to the node that joined first',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1, gpu: 1 }, { CPU: 0, gpu: 0 }), member('c', { CPU: 1, gpu: 1 }, { CPU: 0, gpu: 0 })],
    task: task({ resources: { gpu: 1 } }),
    expected: { kind: 'placed', nodeId: 'b' },
  },
  {
    name: 'nobody offers it: infeasible, naming what each node offers',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1, gpu: 1 })],
    task: task({ resources: { tpu: 1 } }),
    expected: {
      kind: 'infeasible',
      code: 'ERR_TASK_INFEASIBLE',
      reason: /^Task work can never run: it needs CPU 1, tpu 1, and no node of the cluster offers that: host-a \(a\) offers CPU 1; host-b \(b\) offers CPU 1, gpu 1\. Start a node that does/,
    },
  },
  {
    name: 'more CPUs than any node has: infeasible',
    members: [member('a', { CPU: 2 }), member('b', { CPU: 2 })],
    task: task({ numCpus: 3 }),
    expected: { kind: 'infeasible', code: 'ERR_TASK_INFEASIBLE', reason: /needs CPU 3, .*host-a \(a\) offers CPU 2; host-b \(b\) offers CPU 2/ },
  },
  {
    name: 'an origin that is gone: placed on a node that could run it, never declined',
    members: [member('b', { CPU: 1 }, { CPU: 0 }, [], 2), member('c', { CPU: 1 }, { CPU: 0 }, [], 0)],
    task: task(),
    expected: { kind: 'placed', nodeId: 'c' },
  },
  {
    name: 'no members at all: infeasible, saying so',
    members: [],
    task: task(),
    expected: { kind: 'infeasible', code: 'ERR_TASK_INFEASIBLE', reason: /no node of the cluster offers that: no nodes\./ },
  },
  {
    name: 'retry: the origin competes like any other node, and wins with the argument',
    members: [member('a', { CPU: 1 }), member('b', { CPU: 4 })],
    copies: { x: ['a'] },
    task: task({ args: [ref('x', 'z', 1000)] }),
    retry: true,
    expected: { kind: 'declined' },
  },
  {
    name: 'retry: another node with room is taken over an origin without',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1 })],
    task: task(),
    retry: true,
    expected: { kind: 'placed', nodeId: 'b' },
  },
  {
    name: 'retry: no room anywhere, the origin could run it: declined',
    members: [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 1 }, { CPU: 0 })],
    task: task(),
    retry: true,
    expected: { kind: 'declined' },
  },
  {
    name: 'retry: no node left can run it: the node died, it is not infeasible',
    members: [member('a', { CPU: 1 }, { CPU: 0 })],
    task: task({ resources: { gpu: 1 } }),
    retry: true,
    expected: {
      kind: 'infeasible',
      code: 'ERR_NODE_DIED',
      reason: /^Task work failed: the node running it left the cluster, and no node there now offers CPU 1, gpu 1\. Start one/,
    },
  },
];

for (const row of rows) {
  test(`placeTask: ${row.name}`, () => {
    const copies = row.copies ?? {};
    const snapshot: PlacementSnapshot = { members: row.members, holds: (objectId, nodeId) => copies[objectId]?.includes(nodeId) ?? false };
    const decision = placeTask(snapshot, { task: row.task, origin: row.origin ?? 'a', retry: row.retry ?? false });
    const { expected } = row;
    if (expected.kind !== 'infeasible') {
      assert.deepEqual(decision, expected);
      return;
    }
    assert.ok(decision.kind === 'infeasible', `expected infeasible, got ${JSON.stringify(decision)}`);
    assert.equal(decision.error.code, expected.code);
    assert.match(decision.error.message, expected.reason);
  });
}

test('placeTask leaves its snapshot as it was', () => {
  const members = [member('a', { CPU: 1 }, { CPU: 0 }), member('b', { CPU: 2 }, { CPU: 2 }, [{ CPU: 1 }])];
  const before = structuredClone(members);
  placeTask({ members, holds: () => false }, { task: task(), origin: 'a', retry: false });
  assert.deepEqual(members, before);
});

test('roomOf: the report minus the runs sent since, per resource', () => {
  assert.deepEqual(roomOf({ available: { CPU: 4, gpu: 1 }, sentSinceReport: [{ demand: { CPU: 1 } }, { demand: { CPU: 2, gpu: 1 } }] }), { CPU: 1, gpu: 0 });
  assert.deepEqual(roomOf({ available: { CPU: 1 }, sentSinceReport: [{ demand: { CPU: 1, tpu: 1 } }] }), { CPU: 0, tpu: -1 });
});
