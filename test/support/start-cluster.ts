// The in-process cluster every cluster test can start (nats-server's RunServer): a head and N
// nodes (NodeManager + ClusterNode with its data server, composed as cluster/daemon/daemon.ts
// composes them) in the test process, on port 0 and loopback, each node with its own temporary
// shm root, so objects must cross WebSocket between nodes as they would between machines.
// `await using cluster = await startCluster({ nodes: 2 })` tears it all down and checks that
// nothing is left in the shm roots.
//
// Drivers are separate processes attached to a node (`init({ address: node.address })`) or joining
// through the head (`init({ address: cluster.url, token })`), because of what cannot be shared in
// one process: ObjectRef's hooks are one process-wide slot (setObjectRefHooks), taken by the last
// ObjectStore constructed and cleared by any store's close(). So no ObjectRef may be made in the
// test process, and the NodeManagers here must not be used as a Runtime by the test itself.
// Every task's worker is a child of the test process: a task tells which node it ran on by
// `process.env.SHOAL_SESSION_ID` (the node's id), not by `process.ppid`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { NodeManager, type Logger } from '@shoal/runtime';
import { ClusterNode, Head, wsStream } from '@shoal/runtime/cluster';
import { until } from '../runtime-helpers.js';

/** One node of an in-process cluster. */
export interface NodeSpec {
  /** @default 1 */
  readonly numCpus?: number;
  /** @default {} */
  readonly resources?: Readonly<Record<string, number>>;
  /** @default 256 MiB */
  readonly objectStoreMemory?: number;
}

/** Options of {@link startCluster}. */
export interface StartClusterOptions extends NodeSpec {
  /** How many nodes, or one spec each (the first serves drivers joining through the head). @default 1 */
  readonly nodes?: number | readonly NodeSpec[];
  /** The head removes a node not heard from for this long. @default 1500 */
  readonly heartbeatTimeoutMs?: number;
  /** Nodes reach the head through a TCP relay whose connections {@link Cluster.cutHeadLinks} cuts (the head stays up). @default false */
  readonly relayHeadLinks?: boolean;
}

/** A running node of the cluster. */
export interface ClusterMember {
  readonly node: NodeManager;
  readonly member: ClusterNode;
  /** The node's id (its session id): what tasks read from `process.env.SHOAL_SESSION_ID`. */
  readonly nodeId: string;
  /** Where a driver attaches: `unix:<shm root>/shoal-<id>/node.sock`. */
  readonly address: string;
  readonly dataUrl: string;
  readonly shmRoot: string;
  /** Whether {@link ClusterMember.kill} was called. */
  readonly killed: boolean;
  /** Takes the node out of the cluster at once (transfers cut, workers killed): a node that died. */
  kill(): Promise<void>;
}

/** A head and its nodes in this process. */
export interface Cluster extends AsyncDisposable {
  readonly head: Head;
  /** The head's address, `ws://127.0.0.1:PORT`. */
  readonly url: string;
  readonly token: string;
  readonly nodes: readonly ClusterMember[];
  /** What the head and the nodes logged (connections refused, tasks placed again). */
  readonly log: readonly string[];
  /** Cuts every node's connection to the head (a network blip); they reconnect. Needs `relayHeadLinks`. */
  cutHeadLinks(): void;
}

/** A temporary shm root. An owner file marks it as this process's, so other sessions' sweeps leave it alone while this process lives, and the test runner's leak check sees it if it is left behind. */
function temporaryShmRoot(): string {
  const root = mkdtempSync('/dev/shm/shoal-test-root-');
  writeFileSync(join(root, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: null }));
  return root;
}

/** A {@link Logger} that hands each message, after `prefix`, to `log` (the levels and fields are not kept). */
function linesLogger(log: (line: string) => void, prefix: string): Logger {
  const write = (_fields: unknown, line: string) => log(`${prefix}${line}`);
  return { info: write, warn: write, error: write };
}

/** A TCP relay to `port` on loopback whose connections can be cut. */
async function startRelay(port: number): Promise<{ readonly port: number; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', end);
      socket.on('close', end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function startMember(spec: NodeSpec, headUrl: string, token: string, log: (line: string) => void): Promise<ClusterMember> {
  const shmRoot = temporaryShmRoot();
  const node = new NodeManager({
    numCpus: spec.numCpus ?? 1,
    resources: spec.resources ?? {},
    objectStoreMemory: spec.objectStoreMemory ?? 256 * 1024 ** 2,
    shmRoot,
    handleSignals: false,
  });
  let member: ClusterNode | undefined;
  let killed = false;
  try {
    await node.ready();
    member = await ClusterNode.start(node, {
      headUrl,
      token,
      nodeIp: '127.0.0.1',
      logger: linesLogger(log, `node ${node.store.sessionId}: `),
      onFatal: (error) => log(`node ${node.store.sessionId} fatal: ${error.message}`),
    });
  } catch (error) {
    await node.shutdown();
    rmSync(shmRoot, { recursive: true, force: true });
    throw error;
  }
  const started = member;
  return {
    node,
    member: started,
    nodeId: node.store.sessionId,
    address: node.address,
    dataUrl: started.data.url,
    shmRoot,
    get killed() {
      return killed;
    },
    async kill() {
      killed = true;
      await started.destroy();
      await node.shutdown();
    },
  };
}

/**
 * Starts a head and `options.nodes` nodes in this process.
 *
 * @example
 * ```ts
 * await using cluster = await startCluster({ nodes: [{ numCpus: 1 }, { numCpus: 1, resources: { gpu: 1 } }] });
 * const run = await runProgram(DRIVER, [cluster.nodes[0]!.address, 'mode'], {});
 * ```
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const { nodes = 1, heartbeatTimeoutMs = 1500, relayHeadLinks = false, ...defaults } = options;
  const specs = typeof nodes === 'number' ? Array.from({ length: nodes }, () => defaults) : nodes.map((spec) => ({ ...defaults, ...spec }));
  const token = randomBytes(16).toString('hex');
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const members: ClusterMember[] = [];
  const head = await Head.start({
    port: 0,
    token,
    heartbeatTimeoutMs,
    logger: linesLogger(log, 'head: '),
    // As the daemon does: programs joining through the head are served by the first node.
    onDriver: (socket) => members[0]?.node.acceptRemote(wsStream(socket)),
  });
  let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
  const close = async () => {
    for (const member of members) if (!member.killed) await member.member.close();
    for (const member of members) await member.node.shutdown();
    await head.close();
    await relay?.close();
    for (const { shmRoot } of members) {
      const left = readdirSync(shmRoot).filter((name) => name !== 'owner.json');
      rmSync(shmRoot, { recursive: true, force: true });
      assert.deepEqual(left, [], `nothing is left in ${shmRoot} once its node shut down`);
    }
  };
  try {
    // One at a time: each node's view of the others then settles in order.
    relay = relayHeadLinks ? await startRelay(head.port) : undefined;
    const headUrl = relay ? `ws://127.0.0.1:${relay.port}` : head.url;
    for (const spec of specs) members.push(await startMember(spec, headUrl, token, log));
    // A node learns of the others only from the head's answer to its next heartbeat; until then
    // it would spill nothing. Tests start from a cluster whose nodes all know each other.
    await until(
      () => members.every((member) => members.every((other) => other === member || member.member.peers.includes(other.nodeId))),
      'every node to see the others in its view',
    );
  } catch (error) {
    await close();
    throw error;
  }
  return {
    head,
    url: head.url,
    token,
    nodes: members,
    log: lines,
    cutHeadLinks: () => {
      assert.ok(relay, 'cutHeadLinks needs startCluster({ relayHeadLinks: true })');
      relay.cut();
    },
    [Symbol.asyncDispose]: close,
  };
}
