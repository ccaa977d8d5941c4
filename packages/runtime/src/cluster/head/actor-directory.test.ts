import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromWireFailure, ActorDiedError, type ClusterActor, type FromHead } from '@shoal/protocol';
import { ActorDirectory, type ActorAnswer } from './actor-directory.js';
import { FakeLink, nodeReport } from './head-fakes.test.js';
import { Membership } from './membership.js';

const silent = { info: () => {}, warn: () => {}, error: () => {} };

function actorOf(id: string, options: Partial<ClusterActor['options']> = {}): ClusterActor {
  return {
    id,
    cls: { hash: 'h', name: 'Counter', source: 'class Counter {}' },
    methods: ['add'],
    args: [],
    options: { detached: false, maxConcurrency: 1, maxRestarts: 0, maxTaskRetries: 0, numCpus: 0, resources: { gpu: 1 }, streamWindow: 16, ...options },
  };
}

/** A head's membership of fake nodes (A without a gpu, B and C with one) and its actor directory. */
function cluster() {
  const membership = new Membership({ heartbeatTimeoutMs: 1000, logger: silent, departed: () => {} });
  const links = new Map<string, FakeLink>();
  const join = (nodeId: string, gpu: number) => {
    const link = new FakeLink();
    links.set(nodeId, link);
    membership.report(nodeReport(nodeId, { resources: { CPU: 1, gpu }, available: { CPU: 1, gpu } }), link);
  };
  join('A', 0);
  join('B', 1);
  join('C', 1);
  const directory = new ActorDirectory({ membership, logger: silent });
  const sent = (nodeId: string): FromHead[] => links.get(nodeId)!.take();
  const leave = (nodeId: string) => {
    membership.leave(nodeId, links.get(nodeId)!, 'test');
    directory.departed(nodeId);
  };
  const locate = (by: { actorId?: string; name?: string }) => {
    let answer: ActorAnswer | undefined;
    directory.locate(by, (given) => (answer = given));
    return answer;
  };
  const rejoin = (nodeId: string) => join(nodeId, 1);
  return { directory, sent, leave, rejoin, locate };
}

const deathOf = (message: FromHead | undefined): ActorDiedError => {
  assert.ok(message && 'failure' in message && message.failure, `expected a failure, got ${JSON.stringify(message)}`);
  const error = fromWireFailure(message.failure as never);
  assert.ok(error instanceof ActorDiedError);
  return error;
};

describe('the head’s actor directory', () => {
  test('places an actor its origin cannot fit on a node that fits; locates wait until that node runs it', () => {
    const { directory, sent, locate } = cluster();
    directory.place('A', actorOf('x'));
    const [host] = sent('B');
    assert.equal(host?.type, 'actor-host');
    assert.equal(locate({ actorId: 'x' }), undefined, 'not answered before B said it runs it');
    let waited: ActorAnswer | undefined;
    directory.locate({ actorId: 'x' }, (answer) => (waited = answer));
    directory.hosted('B', 'A', actorOf('x'));
    assert.equal(waited?.actor?.nodeId, 'B');
    assert.equal(locate({ actorId: 'x' })?.actor?.dataUrl, 'ws://127.0.0.1:1/B');
  });

  test('an actor no node fits is dead as infeasible, its origin told', () => {
    const { directory, sent, locate } = cluster();
    directory.place('A', actorOf('x', { resources: { tpu: 1 } }));
    const [died] = sent('A');
    assert.equal(died?.type, 'actor-died');
    assert.equal(deathOf(died).reason.kind, 'infeasible');
    assert.equal(deathOf(locate({ actorId: 'x' }) as never).reason.kind, 'infeasible');
  });

  test('names are the cluster’s: a second live actor of a name is ended, the first found by it', () => {
    const { directory, sent, locate } = cluster();
    directory.hosted('B', 'B', actorOf('x', { name: 'n' }));
    directory.hosted('C', 'C', actorOf('y', { name: 'n' }));
    const [end] = sent('C');
    assert.equal(end?.type, 'actor-end');
    assert.equal(deathOf(end).reason.kind, 'name-taken');
    assert.equal(locate({ name: 'n' })?.actor?.id, 'x');
  });

  test('an actor whose node left restarts on another within maxRestarts, then dies node-died', () => {
    const { directory, sent, leave, locate } = cluster();
    directory.place('A', actorOf('x', { maxRestarts: 1, detached: true }));
    directory.hosted('B', 'A', actorOf('x', { maxRestarts: 1, detached: true }));
    sent('B');
    leave('B');
    const [again] = sent('C');
    assert.deepEqual(again && again.type === 'actor-host' ? [again.origin, again.restarts] : again, ['A', 1]);
    directory.hosted('C', 'A', actorOf('x', { maxRestarts: 1, detached: true }));
    leave('C');
    const [died] = sent('A');
    assert.equal(deathOf(died).reason.kind, 'node-died');
    assert.deepEqual(locate({ name: 'x' }), {});
  });

  test('the actors a node made die with it unless detached; their hosts end them', () => {
    const { directory, sent, leave, locate } = cluster();
    directory.hosted('B', 'A', actorOf('owned'));
    directory.hosted('C', 'A', actorOf('kept', { detached: true }));
    leave('A');
    const [end] = sent('B');
    assert.equal(deathOf(end).reason.kind, 'creator-exited');
    assert.deepEqual(sent('C'), []);
    assert.equal(locate({ actorId: 'kept' })?.actor?.nodeId, 'C');
  });

  test('a node that comes back with an actor the head gave up gets it back; one restarted elsewhere meanwhile is ended there', () => {
    const { directory, sent, leave, rejoin, locate } = cluster();
    directory.hosted('B', 'B', actorOf('lone', { detached: true, resources: {} }));
    directory.hosted('B', 'B', actorOf('moved', { detached: true, maxRestarts: 1 }));
    leave('B');
    assert.equal(sent('C')[0]?.type, 'actor-host', 'moved restarts on C');
    directory.hosted('C', 'B', actorOf('moved', { detached: true, maxRestarts: 1 }));
    // B is back (a new registration), announcing both.
    rejoin('B');
    directory.hosted('B', 'B', actorOf('lone', { detached: true, resources: {} }));
    directory.hosted('B', 'B', actorOf('moved', { detached: true, maxRestarts: 1 }));
    assert.equal(locate({ actorId: 'lone' })?.actor?.nodeId, 'B', 'lone lives on where it was');
    assert.equal(locate({ actorId: 'moved' })?.actor?.nodeId, 'C');
    const [end] = sent('B');
    assert.equal(end?.type === 'actor-end' && end.actorId, 'moved');
  });

  test('a kill ends the actor on its host and frees its name; restart only ends its process', () => {
    const { directory, sent, locate } = cluster();
    directory.hosted('B', 'A', actorOf('x', { name: 'n' }));
    directory.end('C', 'x', 'restart');
    const [restart] = sent('B');
    assert.equal(restart?.type === 'actor-end' && restart.restart, true);
    directory.end('C', 'x', 'killed');
    const [end] = sent('B');
    assert.equal(deathOf(end).reason.kind, 'killed');
    assert.equal(sent('A')[0]?.type, 'actor-died', 'its origin is told');
    assert.deepEqual(locate({ name: 'n' }), {});
    assert.equal(deathOf(locate({ actorId: 'x' }) as never).reason.kind, 'killed');
  });
});
