// The cluster across Linux network namespaces: the head and node A in one namespace, node B in
// another, joined by a veth pair, each with its own IP — so every byte between the nodes crosses
// a (virtual) network link instead of loopback. Checks that B is reached at its own IP, that a
// 64 MiB object put on A arrives intact on B (and really went over the veth), and that wrong
// tokens from the other namespace are refused by the head and by B's data server.
// Needs root and iproute2 (`ip netns`); skipped otherwise. Processes in the namespaces share the
// filesystem and /dev/shm with this one; each node has its own SHOAL_HOME and session directory.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sweepStaleSessions } from '@shoal/store';
import { hasExited } from './cluster-helpers.js';
import { isAlive, until } from './runtime-helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = fileURLToPath(new URL('../packages/shoal/dist/cli.js', import.meta.url));
const CROSS = fileURLToPath(new URL('./fixtures/cluster-cross.ts', import.meta.url));
const BYTES = 64 * 1024 * 1024;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Daemon {
  pid: number;
  address: string;
  head: string;
}

interface NodeStatus {
  nodeId: string;
  pid: number;
  dataUrl: string;
  pulls: number;
  pulledBytes: number;
  resources: Record<string, number>;
}

const ip = (args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Why this test cannot run here, or undefined: needs root and a working `ip netns add`. */
function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (ip netns add)';
  const probe = `shoal-probe-${randomBytes(4).toString('hex')}`;
  try {
    ip(['netns', 'add', probe]);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    return `cannot create a network namespace (no iproute2 or no CAP_NET_ADMIN): ${stderr || (error as Error).message}`;
  }
  try {
    ip(['netns', 'del', probe]);
  } catch {
    // Reported by the test's own cleanup check if it matters.
  }
  return undefined;
}

/** Runs `argv` inside network namespace `ns` (`ip netns exec` execs it: the pid is the program's). */
function inNamespace(ns: string, argv: string[], env: Record<string, string>, timeout = 90_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, ...argv],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout, maxBuffer: 16 << 20 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: stdout.toString(), stderr: stderr.toString() }),
    );
  });
}

const shoal = (ns: string, home: string, args: string[]) => inNamespace(ns, [process.execPath, CLI, ...args], { SHOAL_HOME: home });

const daemonOf = (home: string) => JSON.parse(readFileSync(join(home, 'daemon.json'), 'utf8')) as Daemon;

/** Bytes received on `device` in namespace `ns`, from the kernel's counters. */
function rxBytes(ns: string, device: string): number {
  const [link] = JSON.parse(ip(['-n', ns, '-s', '-j', 'link', 'show', device])) as { stats64: { rx: { bytes: number } } }[];
  return link!.stats64.rx.bytes;
}

/** Pids of the processes in namespace `ns` (none once it is gone). */
function pidsIn(ns: string): number[] {
  try {
    return ip(['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const escape = (text: string) => text.replace(/[.]/g, '\\.');

const skip = skipReason();

test('a head in one network namespace, a node in another: own IPs, a 64 MiB pull over the veth, tokens checked', { skip, timeout: 180_000 }, async (t) => {
  const tag = randomBytes(3).toString('hex');
  const nsA = `shoal-${tag}-a`;
  const nsB = `shoal-${tag}-b`;
  // Each pair lives only in its own namespaces; the random /24 just keeps concurrent runs apart in logs.
  const subnet = `10.${randomInt(200, 251)}.${randomInt(0, 256)}`;
  const ipA = `${subnet}.2`;
  const ipB = `${subnet}.3`;
  const token = `netns-${randomBytes(16).toString('hex')}`;
  const homeA = mkdtempSync(join(tmpdir(), 'shoal-netns-a-'));
  const homeB = mkdtempSync(join(tmpdir(), 'shoal-netns-b-'));
  const homeC = mkdtempSync(join(tmpdir(), 'shoal-netns-c-'));
  const sessionDirectories: string[] = [];
  try {
    // Two namespaces joined by one veth pair (created straight into them: nothing is added to
    // this namespace, and deleting the namespaces deletes the pair).
    ip(['netns', 'add', nsA]);
    ip(['netns', 'add', nsB]);
    ip(['link', 'add', 'veth0', 'netns', nsA, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', nsB]);
    for (const [ns, address] of [[nsA, ipA], [nsB, ipB]] as const) {
      ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'veth0']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'link', 'set', 'veth0', 'up']);
    }

    // The head and node A in namespace A, listening on A's address only.
    const startedA = await shoal(nsA, homeA, ['start', '--head', '--host', ipA, '--port', '0', '--token', token, '--num-cpus', '1']);
    assert.equal(startedA.code, 0, `${startedA.stderr}\n${readLog(homeA)}`);
    const a = daemonOf(homeA);
    sessionDirectories.push(dirname(a.address.slice(5)));
    assert.match(a.head, new RegExp(`^ws://${escape(ipA)}:\\d+$`));

    // Node B in namespace B joins over the veth; its data server address is found, not given:
    // the address B reaches the head from, which is B's own.
    const startedB = await shoal(nsB, homeB, ['start', '--address', a.head, '--token', token, '--num-cpus', '1', '--resources', '{"gpu":1}']);
    assert.equal(startedB.code, 0, `${startedB.stderr}\n${readLog(homeB)}`);
    const b = daemonOf(homeB);
    sessionDirectories.push(dirname(b.address.slice(5)));
    assert.match(readLog(homeA), new RegExp(`node \\S+ joined from (::ffff:)?${escape(ipB)} `));

    const status = async (): Promise<NodeStatus[]> => {
      const run = await shoal(nsA, homeA, ['status', '--json']);
      assert.equal(run.code, 0, run.stderr);
      return (JSON.parse(run.stdout) as { nodes: NodeStatus[] }).nodes;
    };
    const nodes = await status();
    assert.deepEqual(nodes.map((node) => node.pid).sort(), [a.pid, b.pid].sort());
    const nodeA = nodes.find((node) => node.pid === a.pid)!;
    const nodeB = nodes.find((node) => node.pid === b.pid)!;
    assert.match(nodeA.dataUrl, new RegExp(`^ws://${escape(ipA)}:\\d+$`), 'the head node serves objects at its --host');
    assert.match(nodeB.dataUrl, new RegExp(`^ws://${escape(ipB)}:\\d+$`), "node B serves objects at its namespace's IP");
    assert.deepEqual(nodeB.resources, { CPU: 1, gpu: 1 });

    // A 64 MiB object put on A, checksummed by two tasks that only B can run: B pulls it from
    // A's data server, across the veth (B's receive counter grows by at least the object).
    const receivedBefore = rxBytes(nsB, 'veth0');
    const transfer = await inNamespace(nsA, [process.execPath, '--import', 'tsx', CROSS, a.head, 'transfer', String(BYTES)], { SHOAL_HOME: homeA });
    assert.equal(transfer.code, 0, `${transfer.stderr}\n--- node A ---\n${readLog(homeA)}\n--- node B ---\n${readLog(homeB)}`);
    const received = rxBytes(nsB, 'veth0') - receivedBefore;
    const result = JSON.parse(transfer.stdout) as {
      local: string;
      first: { hash: string; length: number; node: string };
      second: { hash: string; length: number; node: string };
    };
    for (const run of [result.first, result.second]) {
      assert.equal(run.hash, result.local, 'B computed the checksum of the bytes A put');
      assert.equal(run.length, BYTES / 8);
      assert.equal(run.node, nodeB.nodeId, 'the task ran on node B');
    }
    assert.ok(received >= BYTES, `B's veth received ${received} bytes, less than the ${BYTES}-byte object`);
    // Status shows what each node said in its last heartbeat (every second): wait for B's next.
    let afterTransfer: NodeStatus | undefined;
    await until(async () => {
      afterTransfer = (await status()).find((node) => node.pid === b.pid);
      return afterTransfer !== undefined && afterTransfer.pulls >= 1;
    }, "B's heartbeat to report the pull", 30_000);
    assert.ok(afterTransfer!.pulledBytes >= BYTES, `B pulled ${afterTransfer!.pulledBytes} bytes`);
    t.diagnostic(`${nsA} ${ipA} <-> ${nsB} ${ipB}: B's veth received ${received} bytes; B made ${afterTransfer!.pulls} pull(s), ${afterTransfer!.pulledBytes} bytes`);

    // A node in namespace B with the wrong token: the head refuses it (and says from where),
    // the would-be daemon exits, the cluster is unchanged.
    const wrongJoin = await shoal(nsB, homeC, ['start', '--address', a.head, '--token', 'not-the-token', '--num-cpus', '1']);
    assert.equal(wrongJoin.code, 1, wrongJoin.stderr);
    assert.match(wrongJoin.stderr, /the daemon exited/);
    assert.match(readLog(homeC), /refused the token/);
    assert.ok(!existsSync(join(homeC, 'daemon.json')));
    assert.match(readLog(homeA), new RegExp(`refused a connection from (::ffff:)?${escape(ipB)}: wrong or missing token`));
    // `shoal status` from B with the wrong token: refused too.
    const wrongStatus = await shoal(nsB, homeC, ['status', '--address', a.head, '--token', 'not-the-token']);
    assert.equal(wrongStatus.code, 1);
    assert.match(wrongStatus.stderr, /refused the token/);
    assert.deepEqual((await status()).map((node) => node.pid).sort(), [a.pid, b.pid].sort());

    // B's data server refuses a connection from A's namespace with the wrong token.
    const probe = [
      "import { WebSocket } from 'ws';",
      "const socket = new WebSocket(process.argv[1], { perMessageDeflate: false, headers: { 'x-shoal-token': 'not-the-token' } });",
      "socket.on('open', () => { console.log('welcomed'); process.exit(1); });",
      "socket.on('unexpected-response', (_request, response) => { console.log(response.statusCode); process.exit(0); });",
      "socket.on('error', (error) => { console.error(error.message); process.exit(2); });",
    ].join('\n');
    const dataProbe = await inNamespace(nsA, [process.execPath, '--input-type=module', '-e', probe, nodeB.dataUrl], {});
    assert.equal(dataProbe.code, 0, dataProbe.stderr);
    assert.equal(dataProbe.stdout.trim(), '401', 'refused at the upgrade');
    assert.match(readLog(homeB), new RegExp(`refused a data connection from (::ffff:)?${escape(ipA)}: wrong or missing token`));

    // Stop B, then the head: each removes its own session directory.
    for (const home of [homeB, homeA]) {
      const stopped = await shoal(home === homeA ? nsA : nsB, home, ['stop']);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stdout, /Stopped the Shoal daemon/);
    }
    assert.ok(hasExited(a.pid) && hasExited(b.pid), 'stop returns once the daemon has exited');
    for (const directory of sessionDirectories) assert.ok(!existsSync(directory), `stop removes ${directory}`);
  } finally {
    // Daemons first, politely (their own session directories go with them), from this namespace
    // (`shoal stop` only signals a pid). Then whatever still runs in the namespaces is killed:
    // daemons that did not stop, their workers, a driver cut off by a failed assertion.
    for (const home of [homeB, homeA, homeC]) {
      try {
        execFileSync(process.execPath, [CLI, 'stop'], { env: { ...process.env, SHOAL_HOME: home }, stdio: 'ignore', timeout: 30_000 });
      } catch {
        // Killed below.
      }
    }
    const leftovers = [...pidsIn(nsA), ...pidsIn(nsB)];
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await until(() => leftovers.every((pid) => !isAlive(pid)), 'the processes in the namespaces to be gone', 30_000).catch(() => {});
    for (const ns of [nsA, nsB]) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // Never made.
      }
    }
    // Killed daemons could not remove their session directories.
    sweepStaleSessions('/dev/shm');
    for (const directory of sessionDirectories) rmSync(directory, { recursive: true, force: true });
    for (const home of [homeA, homeB, homeC]) rmSync(home, { recursive: true, force: true });
  }
  // Nothing of this run is left: no namespace (the veth pair went with them), no session directory.
  const namespaces = ip(['netns', 'list']);
  assert.ok(!namespaces.includes(nsA) && !namespaces.includes(nsB), namespaces);
  for (const directory of sessionDirectories) assert.ok(!existsSync(directory), `${directory} is gone`);
});

function readLog(home: string): string {
  try {
    return readFileSync(join(home, 'daemon.log'), 'utf8');
  } catch {
    return '';
  }
}
