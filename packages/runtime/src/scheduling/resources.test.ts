import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endLending, lend, unblock } from './cpu-lending.js';
import { acquire, demandOf, describeResources, fits, giveBack, sameDemand, shortfall } from './resources.js';

test('fits: every positive amount offered, within rounding', () => {
  assert.equal(fits({ CPU: 1 }, { CPU: 1 }), true);
  assert.equal(fits({ CPU: 1.5 }, { CPU: 1 }), false);
  assert.equal(fits({ CPU: 0.1 + 0.2 }, { CPU: 0.3 }), true);
  assert.equal(fits({ gpu: 1 }, { CPU: 8 }), false);
  assert.equal(fits({ gpu: 0 }, { CPU: 8 }), true);
  assert.equal(fits({}, {}), true);
});

test('shortfall names the first missing resource', () => {
  assert.deepEqual(shortfall({ CPU: 1, gpu: 2 }, { CPU: 4, gpu: 1 }), { name: 'gpu', amount: 2, offered: 1 });
  assert.equal(shortfall({ CPU: 1 }, { CPU: 1 }), undefined);
});

test('acquire and giveBack are inverses, and may go negative', () => {
  const available = { CPU: 1 };
  acquire(available, { CPU: 2, gpu: 1 });
  assert.deepEqual(available, { CPU: -1, gpu: -1 });
  giveBack(available, { CPU: 2, gpu: 1 });
  assert.deepEqual(available, { CPU: 1, gpu: 0 });
});

test('demandOf, sameDemand, describeResources', () => {
  assert.deepEqual(demandOf({ numCpus: 2, resources: { gpu: 1 } }), { CPU: 2, gpu: 1 });
  assert.equal(sameDemand({ CPU: 1 }, { CPU: 1 }), true);
  assert.equal(sameDemand({ CPU: 1 }, { CPU: 1, gpu: 1 }), false);
  assert.equal(sameDemand(undefined, { CPU: 1 }), false);
  assert.equal(describeResources({ CPU: 2, gpu: 1 }), 'CPU 2, gpu 1');
  assert.equal(describeResources({}), 'nothing');
});

test('a blocked worker lends its CPUs once, and takes them back with its last answer', () => {
  const available = { CPU: 0 };
  const worker = { blockedRequests: 0, lease: { CPU: 2 } };
  assert.equal(lend(available, worker), true);
  assert.equal(lend(available, worker), false);
  assert.deepEqual(available, { CPU: 2 });
  unblock(available, worker);
  assert.deepEqual(available, { CPU: 2 });
  unblock(available, worker);
  assert.deepEqual(available, { CPU: 0 });
  unblock(available, worker);
  assert.deepEqual(available, { CPU: 0 }, 'an answer after the last one changes nothing');
});

test('a task that ends while blocked takes back what it lent', () => {
  const available = { CPU: 0 };
  const worker = { blockedRequests: 0, lease: { CPU: 1 } };
  lend(available, worker);
  lend(available, worker);
  endLending(available, worker);
  assert.deepEqual(available, { CPU: 0 });
  assert.equal(worker.blockedRequests, 0);
});
