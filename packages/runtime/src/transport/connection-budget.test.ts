import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { ConnectionBudget } from './connection-budget.js';

/** A TCP listener on loopback under a budget; `open()` connects and says whether it was admitted. */
async function listener(maxConnections: number, maxConnectionsPerSource: number) {
  const budget = new ConnectionBudget({ kind: 'test connection', maxConnections, maxConnectionsPerSource, handshakeTimeoutMs: 60_000, logger: { warn: () => {} } });
  const server = createServer();
  budget.watch(server);
  const accepted: Socket[] = [];
  // Registered after the budget's: a refused socket is already destroyed here.
  server.on('connection', (socket: Socket) => accepted.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const clients: Socket[] = [];
  const open = async (): Promise<{ admitted: boolean; server: Socket }> => {
    const before = accepted.length;
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.on('error', () => {});
    clients.push(client);
    while (accepted.length === before) await once(server, 'connection');
    const socket = accepted[before]!;
    return { admitted: !socket.destroyed, server: socket };
  };
  return {
    budget,
    open,
    [Symbol.asyncDispose]: async () => {
      for (const client of clients) client.destroy();
      budget.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('an authenticated connection counts against the total only, not its source', async () => {
  await using guarded = await listener(4, 2);
  const first = await guarded.open();
  const second = await guarded.open();
  assert.ok(first.admitted && second.admitted);
  assert.equal((await guarded.open()).admitted, false, 'a third unauthenticated one from the same address is refused');

  // Two long-lived sessions that proved their token (drivers behind one NAT) free the source's room.
  guarded.budget.authenticated(first.server);
  guarded.budget.authenticated(second.server);
  guarded.budget.authenticated(second.server); // a second call changes nothing
  assert.ok((await guarded.open()).admitted);
  assert.ok((await guarded.open()).admitted);
  assert.equal(guarded.budget.size, 4);
  // The total still holds for everyone.
  assert.equal((await guarded.open()).admitted, false, 'past the total, refused');
});

test('refused upgrades are logged once per burst and reason, then summed up when the budget closes', () => {
  const lines: string[] = [];
  const budget = new ConnectionBudget({ kind: 'test connection', maxConnections: 4, maxConnectionsPerSource: 2, handshakeTimeoutMs: 60_000, logger: { warn: (_fields, message) => lines.push(message) } });
  for (let i = 0; i < 500; i++) budget.logRefusal('wrong or missing token', { remote: '127.0.0.1' }, 'refused a connection from 127.0.0.1: wrong or missing token');
  budget.logRefusal('origin not allowed', { remote: '127.0.0.1' }, 'refused a connection from 127.0.0.1: origin not allowed');
  assert.deepEqual(lines, ['refused a connection from 127.0.0.1: wrong or missing token', 'refused a connection from 127.0.0.1: origin not allowed']);
  budget.close();
  assert.equal(lines.length, 3, 'the 499 repeats are one summary line');
  assert.match(lines[2]!, /and 498 more like it/);
});
