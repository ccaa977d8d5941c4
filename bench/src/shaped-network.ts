// The cluster suite's shaped network (cluster.ts, `--only=cluster-netns`): every node in a Linux
// network namespace of its own, joined to a bridge by one veth pair, each link limited with `tc`
// `tbf` on both ends: the node's end shapes its upload, the bridge's end its download. The bridge
// has a namespace of its own too, so nothing is added to this one (`ip link` here is unchanged),
// and deleting the bridge's namespace deletes every veth pair with it. `netem` is not in this
// kernel; tbf alone gives a rate and a queue, no added delay.
//
// Namespaces are named `shoal-bench-<pid>-<role>`: at exit (a failure, a signal) every one still
// listed is deleted, and a run that was SIGKILLed leaves names the next run deletes.
import { execFileSync } from 'node:child_process';
import type { ClusterNetwork } from './cluster-network.js';
import { readProcStat } from './proc.js';

/**
 * tbf's bucket: 1 MB lets a single TCP stream reach ~0.96 of the rate through both shapers, where
 * 64 KB held it to ~0.7 (measured with one stream between two namespaces at 1 Gbit/s: 64kb 0.69,
 * 256kb 0.95, 1mb 0.95–0.96, 4mb 0.97, the last by bursting above the rate). The bigger bucket
 * also absorbs a late timer on a busy 2-core VM.
 */
export const BURST = '1mb';
/**
 * How long a packet may wait in tbf's queue (its limit: rate × latency + burst, 2.25 MB at
 * 1 Gbit/s). 5, 10 and 50 ms gave one stream the same rate; the shortest that does keeps the
 * queue (and the RTT it adds) small.
 */
export const LATENCY = '10ms';
/** Each run's network is alone in its namespaces: one fixed /24 cannot clash with another run's. */
const SUBNET = '10.201.0';
const PREFIX = 'shoal-bench-';

export interface LinkShape {
  /** Each link's rate, each way, in Mbit/s (10^6 bits). */
  readonly mbit: number;
  readonly burst: string;
  readonly latency: string;
}

/** What tbf counted on one node's link since the network was made (the frames' bytes). */
export interface LinkCounters {
  role: string;
  upBytes: number;
  upDrops: number;
  downBytes: number;
  downDrops: number;
}

interface Node {
  namespace: string;
  address: string;
  /** The bridge's end of the node's veth pair. */
  port: string;
}

function run(program: 'ip' | 'tc', args: readonly string[]): string {
  try {
    return execFileSync(program, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`\`${program} ${args.join(' ')}\` failed: ${stderr || (error as Error).message}`, { cause: error });
  }
}

const namespaces = (): string[] =>
  run('ip', ['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter(Boolean);

function deleteNamespace(namespace: string): void {
  try {
    run('ip', ['netns', 'del', namespace]);
  } catch {
    // Already gone.
  }
}

/** Namespaces not deleted yet: at exit (a failure, a signal) they go. */
const live = new Set<string>();
let hooked = false;
function deleteAtExit(namespace: string): void {
  // Registered at the first network, so after cluster.ts's own hook, which signals the daemons.
  // A namespace whose name is deleted lives on while a process is in it, and goes with the last.
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const name of live) deleteNamespace(name);
    });
  }
  live.add(namespace);
}

/** Deletes namespaces left by runs that were SIGKILLed (their pid is gone). */
function deleteStale(): void {
  for (const name of namespaces()) {
    const pid = /^shoal-bench-(\d+)-/.exec(name)?.[1];
    if (pid === undefined) continue;
    const stat = readProcStat(Number(pid));
    if (stat === undefined || stat.state === 'Z' || stat.state === 'X') deleteNamespace(name);
  }
}

/**
 * A bridge and one namespace per role, each linked to the bridge by a shaped veth pair. Make one
 * with {@link ShapedNetwork.open}; {@link ShapedNetwork.close} deletes it all.
 *
 * @example
 * const opened = ShapedNetwork.open(['A', 'B'], { mbit: 1000, burst: BURST, latency: LATENCY });
 * if ('skipped' in opened) console.log(opened.skipped);
 * else try { execFileSync(...opened.wrap('B', ['hostname'])); } finally { opened.close(); }
 */
export class ShapedNetwork implements ClusterNetwork {
  readonly description: string;
  readonly shape: LinkShape;
  readonly #bridge: string;
  readonly #nodes = new Map<string, Node>();
  #state: 'open' | 'closed' = 'open';

  /**
   * The network, or why it cannot be made here: not Linux, not root, or `ip netns add` failed (no
   * iproute2, no CAP_NET_ADMIN). A failure after that (tc refusing tbf, say) throws, with all
   * that was made deleted.
   */
  static open(roles: readonly string[], shape: LinkShape): ShapedNetwork | { skipped: string } {
    if (process.platform !== 'linux') return { skipped: 'network namespaces are Linux only' };
    if (process.getuid?.() !== 0) return { skipped: 'needs root to create network namespaces (ip netns add)' };
    const bridge = `${PREFIX}${process.pid}-bridge`;
    try {
      deleteStale();
      run('ip', ['netns', 'add', bridge]);
    } catch (error) {
      return { skipped: `cannot create a network namespace (no iproute2 or no CAP_NET_ADMIN): ${(error as Error).message}` };
    }
    deleteAtExit(bridge);
    return new ShapedNetwork(bridge, roles, shape);
  }

  private constructor(bridge: string, roles: readonly string[], shape: LinkShape) {
    if (!Number.isSafeInteger(shape.mbit) || shape.mbit < 1) throw new RangeError(`Expected \`mbit\` to be a positive integer, got \`${shape.mbit}\``);
    this.#bridge = bridge;
    this.shape = shape;
    this.description = `over ${shape.mbit} Mbit/s links (tbf burst ${shape.burst}, latency ${shape.latency}, on both ends of each veth; one bridge)`;
    try {
      run('ip', ['-n', bridge, 'link', 'add', 'br0', 'type', 'bridge']);
      run('ip', ['-n', bridge, 'link', 'set', 'br0', 'up']);
      const tbf = ['root', 'tbf', 'rate', `${shape.mbit}mbit`, 'burst', shape.burst, 'latency', shape.latency];
      for (const [i, role] of roles.entries()) {
        const node: Node = { namespace: `${PREFIX}${process.pid}-${role}`, address: `${SUBNET}.${i + 2}`, port: `v-${role}` };
        run('ip', ['netns', 'add', node.namespace]);
        deleteAtExit(node.namespace);
        this.#nodes.set(role, node);
        // Made straight into the two namespaces: nothing passes through this one.
        run('ip', ['link', 'add', 'eth0', 'netns', node.namespace, 'type', 'veth', 'peer', 'name', node.port, 'netns', bridge]);
        run('ip', ['-n', bridge, 'link', 'set', node.port, 'master', 'br0']);
        run('ip', ['-n', bridge, 'link', 'set', node.port, 'up']);
        run('ip', ['-n', node.namespace, 'addr', 'add', `${node.address}/24`, 'dev', 'eth0']);
        run('ip', ['-n', node.namespace, 'link', 'set', 'lo', 'up']);
        run('ip', ['-n', node.namespace, 'link', 'set', 'eth0', 'up']);
        run('tc', ['-n', node.namespace, 'qdisc', 'add', 'dev', 'eth0', ...tbf]);
        run('tc', ['-n', bridge, 'qdisc', 'add', 'dev', node.port, ...tbf]);
      }
    } catch (error) {
      this.close();
      throw error;
    }
  }

  #node(role: string): Node {
    const node = this.#nodes.get(role);
    if (!node) throw new RangeError(`Expected one of the roles ${[...this.#nodes.keys()].join(', ')}, got \`${role}\``);
    if (this.#state !== 'open') throw new Error('The shaped network is closed: nothing can run in it any more');
    return node;
  }

  host(role: string): string {
    return this.#node(role).address;
  }

  wrap(role: string, argv: readonly string[]): [file: string, args: string[]] {
    return ['ip', ['netns', 'exec', this.#node(role).namespace, ...argv]];
  }

  /** tbf's counters on every node's link: a transfer that did not cross it shows here. */
  counters(): LinkCounters[] {
    const read = (namespace: string, device: string): { bytes: number; drops: number } => {
      const [qdisc] = JSON.parse(run('tc', ['-n', namespace, '-s', '-j', 'qdisc', 'show', 'dev', device])) as { kind: string; bytes: number; drops: number }[];
      if (qdisc?.kind !== 'tbf') throw new Error(`${device} in ${namespace} has no tbf qdisc (found ${qdisc?.kind})`);
      return qdisc;
    };
    return [...this.#nodes].map(([role, node]) => {
      const up = read(node.namespace, 'eth0');
      const down = read(this.#bridge, node.port);
      return { role, upBytes: up.bytes, upDrops: up.drops, downBytes: down.bytes, downDrops: down.drops };
    });
  }

  /**
   * Kills what still runs in the namespaces (the daemons should have stopped by now), deletes
   * them (the veth pairs and the bridge go with them) and says what was left behind. Idempotent.
   */
  close(): string[] {
    if (this.#state === 'closed') return [];
    this.#state = 'closed';
    const problems: string[] = [];
    const ours = [...[...this.#nodes.values()].map((node) => node.namespace), this.#bridge];
    for (const namespace of ours) {
      let pids: number[] = [];
      try {
        pids = run('ip', ['netns', 'pids', namespace]).split('\n').filter(Boolean).map(Number);
      } catch {
        // Never made.
      }
      if (pids.length > 0) problems.push(`processes ${pids.join(', ')} still ran in namespace ${namespace}; killed`);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
      }
      deleteNamespace(namespace);
      live.delete(namespace);
    }
    const left = namespaces().filter((name) => ours.includes(name));
    if (left.length > 0) problems.push(`namespaces ${left.join(', ')} could not be deleted`);
    return problems;
  }
}
