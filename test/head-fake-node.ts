// A fake node speaking the head protocol over a real socket: what the head tests drive the head
// with (head-placement, cluster-identity). This file has no tests of its own.
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { decodeFromHead, decodeMessage, encodeMessage, type FromHead, type NodeReport, type ToHead } from '@shoal/protocol';
// The same fake node reports as the head's unit tests.
import { nodeReport } from '../packages/runtime/src/cluster/head/head-fakes.test.js';

/** The token the fake nodes present. */
export const FAKE_TOKEN = 'placement-test-token';

export class FakeNode {
  readonly inbox: FromHead[] = [];
  readonly #waiters: (() => void)[] = [];
  #requests = 0;
  /** How the head closed this connection (code and reason), once it did. */
  readonly closed: Promise<{ code: number; reason: string }>;
  constructor(
    readonly socket: WebSocket,
    readonly report: NodeReport,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    socket.on('message', (data: Buffer) => {
      this.inbox.push(decodeFromHead(decodeMessage(data)));
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** Connects and says hello as node `nodeId`, without registering yet. */
  static async connect(url: string, nodeId: string, resources: Record<string, number>, available = resources): Promise<FakeNode> {
    const socket = new WebSocket(url, { perMessageDeflate: false, headers: { 'x-shoal-token': FAKE_TOKEN } });
    await new Promise((resolve) => socket.once('open', resolve));
    const node = new FakeNode(socket, nodeReport(nodeId, { resources, available }));
    node.send({ type: 'hello', role: 'node' });
    return node;
  }

  /** Connects and registers as node `nodeId`; returns once the head registered it. */
  static async join(url: string, nodeId: string, resources: Record<string, number>, available = resources): Promise<FakeNode> {
    const node = await FakeNode.connect(url, nodeId, resources, available);
    node.send({ type: 'register', node: node.report });
    await node.next('registered');
    return node;
  }

  send(message: ToHead): void {
    this.socket.send(encodeMessage(message));
  }

  /** Reports now holding `objectId`, and returns once the head has recorded it. */
  async holds(objectId: string, size: number): Promise<void> {
    this.send({ type: 'objects', added: [[objectId, size]], removed: [] });
    // Same socket, so the head handled `objects` before this `locate`.
    const requestId = ++this.#requests;
    this.send({ type: 'locate', requestId, ids: [objectId] });
    const located = await this.next('located');
    assert.equal(located.requestId, requestId);
    assert.ok(located.holders[objectId]?.includes(this.report.dataUrl), `the head records ${this.report.nodeId} holding ${objectId}`);
  }

  /** Heartbeats having seen runs up to `runsSeen`, and returns once the head has applied it. */
  async heartbeat(runsSeen: number): Promise<void> {
    this.send({ type: 'heartbeat', node: { ...this.report, runsSeen } });
    await this.next('view');
  }

  /** The next message of `type` (waiting up to 10 s for it). */
  async next<T extends FromHead['type']>(type: T): Promise<Extract<FromHead, { type: T }>> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const index = this.inbox.findIndex((message) => message.type === type);
      if (index >= 0) return this.inbox.splice(index, 1)[0] as Extract<FromHead, { type: T }>;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.report.nodeId} got no ${type}; it has ${JSON.stringify(this.inbox.map((m) => m.type))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  [Symbol.dispose](): void {
    this.socket.terminate();
  }
}
