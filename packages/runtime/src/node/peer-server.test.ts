import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_CONNECTIONS } from '@shoal/protocol';
import { PeerServer } from './peer-server.js';

test("the node socket holds every worker the node may start, and attached programs' room beside them", () => {
  // 128 CPUs: maxBlockedWorkers is 512 by default. Constructing does no I/O (listen() does).
  const maxBlockedWorkers = 4 * 128;
  const events = {} as ConstructorParameters<typeof PeerServer>[2];
  const server = new PeerServer('/nonexistent/node.sock', { type: 'welcome', sessionId: 's', directory: '/nonexistent', inlineThreshold: 1 }, events, maxBlockedWorkers);
  assert.equal(server.maxConnections, maxBlockedWorkers + MAX_CONNECTIONS);
});
