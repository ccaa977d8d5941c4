import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spillTarget, type PeerRoom, type SpillTarget } from './spill-target.js';

const cases: { name: string; demand: Record<string, number>; peers: PeerRoom[]; expected: SpillTarget }[] = [
  { name: 'no peers: wait', demand: { CPU: 1 }, peers: [], expected: { kind: 'wait' } },
  {
    name: 'the first peer with room, what it has left',
    demand: { CPU: 1 },
    peers: [
      { nodeId: 'a', available: { CPU: 0.5 } },
      { nodeId: 'b', available: { CPU: 2 } },
      { nodeId: 'c', available: { CPU: 4 } },
    ],
    expected: { kind: 'placed', nodeId: 'b', available: { CPU: 1 } },
  },
  {
    name: 'a custom resource only one peer offers',
    demand: { CPU: 1, gpu: 1 },
    peers: [
      { nodeId: 'a', available: { CPU: 8 } },
      { nodeId: 'b', available: { CPU: 1, gpu: 2 } },
    ],
    expected: { kind: 'placed', nodeId: 'b', available: { CPU: 0, gpu: 1 } },
  },
  {
    name: 'room for part of the demand only: wait',
    demand: { CPU: 1, gpu: 1 },
    peers: [{ nodeId: 'a', available: { CPU: 4, gpu: 0 } }],
    expected: { kind: 'wait' },
  },
  {
    name: 'fractions that add up despite floating-point error',
    demand: { CPU: 0.1 },
    peers: [{ nodeId: 'a', available: { CPU: 0.3 - 0.2 } }],
    expected: { kind: 'placed', nodeId: 'a', available: { CPU: 0.3 - 0.2 - 0.1 } },
  },
  {
    name: 'a demand of nothing fits any peer',
    demand: { CPU: 0 },
    peers: [{ nodeId: 'a', available: { CPU: 0 } }],
    expected: { kind: 'placed', nodeId: 'a', available: { CPU: 0 } },
  },
  {
    name: 'a peer oversubscribed (negative room) has none',
    demand: { CPU: 0.5 },
    peers: [{ nodeId: 'a', available: { CPU: -1 } }],
    expected: { kind: 'wait' },
  },
];

for (const { name, demand, peers, expected } of cases) {
  test(`spillTarget: ${name}`, () => {
    const before = structuredClone(peers);
    assert.deepEqual(spillTarget(demand, peers), expected);
    assert.deepEqual(peers, before, 'the snapshot is not changed');
  });
}

test('spillTarget: successive reservations use up a peer', () => {
  let peers: PeerRoom[] = [{ nodeId: 'a', available: { CPU: 2 } }];
  const kinds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const target = spillTarget({ CPU: 1 }, peers);
    kinds.push(target.kind);
    if (target.kind === 'placed') peers = [{ nodeId: target.nodeId, available: target.available }];
  }
  assert.deepEqual(kinds, ['placed', 'placed', 'wait']);
});
