// Where the cluster suite's processes run (cluster.ts): on loopback, as this process's children,
// or each node in a network namespace of its own (shaped-network.ts). The suite asks only these
// two questions, so both modes share every other line of it.

/** The network the cluster suite's nodes, driver and raw TCP peers run on. */
export interface ClusterNetwork {
  /** For the table: "on loopback", "over 1000 Mbit/s shaped links (…)". */
  readonly description: string;
  /** The address node `role`'s servers listen on and the others reach it at. */
  host(role: string): string;
  /**
   * The program and arguments that run `argv` (a program and its arguments) as a process of node
   * `role`: `argv` itself on loopback, `ip netns exec <namespace> ...argv` in a namespace (which
   * execs `argv`, so the pid is the program's and an IPC channel passes through).
   */
  wrap(role: string, argv: readonly string[]): [file: string, args: string[]];
}

/** Every node on this machine's loopback, with no namespace. */
export const LOOPBACK: ClusterNetwork = {
  description: 'on loopback',
  host: () => '127.0.0.1',
  wrap: (_role, [file, ...args]) => {
    if (file === undefined) throw new TypeError('Expected a program to run, got an empty argv');
    return [file, args];
  },
};
