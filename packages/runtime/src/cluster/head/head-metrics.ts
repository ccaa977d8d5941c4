import type { Registry } from 'prom-client';
import type { NodeStatus } from '@shoal/protocol';
import { promClient } from '../../prom-client.js';

/**
 * The head's Prometheus metrics: the cluster as its members last reported it, one series per node
 * (labels `node` and `host`), read when scraped. Tasks per function, histograms and transfers
 * are each node's own (its data port's `/metrics`). Served as `/metrics` on the head's port.
 *
 * | metric | labels |
 * |---|---|
 * | `shoal_cluster_nodes` | |
 * | `shoal_node_resources_total`, `shoal_node_resources_available` | `node`, `host`, `resource` |
 * | `shoal_node_store_used_bytes`, `_capacity_bytes`, `_objects`, `shoal_node_spilled_bytes` | `node`, `host` |
 * | `shoal_node_tasks_queued`, `_running`, `shoal_node_workers` | `node`, `host` |
 * | `shoal_node_pulled_bytes`, `shoal_node_last_seen_seconds` | `node`, `host` |
 */
export function headMetrics(nodes: () => readonly NodeStatus[], clusterId: string): Registry {
  const { Gauge, Registry } = promClient();
  const registry = new Registry();
  registry.setDefaultLabels({ cluster: clusterId });
  const registers = [registry];
  new Gauge({
    name: 'shoal_cluster_nodes',
    help: 'Nodes that are members of the cluster',
    registers,
    collect() {
      this.set(nodes().length);
    },
  });
  const perNode = (name: string, help: string, value: (node: NodeStatus) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['node', 'host'] as const,
      registers,
      collect() {
        this.reset();
        for (const node of nodes()) this.set({ node: node.nodeId, host: node.hostname }, value(node));
      },
    });
  perNode('shoal_node_store_used_bytes', "Bytes of the node's store in use", (node) => node.objectBytes);
  perNode('shoal_node_store_capacity_bytes', "The capacity of the node's store", (node) => node.capacityBytes);
  perNode('shoal_node_store_objects', "Objects in the node's store", (node) => node.objects);
  perNode('shoal_node_spilled_bytes', 'Bytes the node spilled to disk (on disk only now)', (node) => node.spill?.spilledBytes ?? 0);
  perNode('shoal_node_tasks_queued', 'Tasks waiting or ready on the node', (node) => node.queuedTasks);
  perNode('shoal_node_tasks_running', 'Tasks running on the node', (node) => node.runningTasks);
  perNode('shoal_node_workers', "The node's worker processes", (node) => node.workers);
  perNode('shoal_node_pulled_bytes', 'Bytes the node pulled from other nodes since it started', (node) => node.pulledBytes);
  perNode('shoal_node_last_seen_seconds', 'Seconds since the head last heard from the node', (node) => node.lastSeenMs / 1000);
  const resources = (name: string, help: string, of: (node: NodeStatus) => Readonly<Record<string, number>>) =>
    new Gauge({
      name,
      help,
      labelNames: ['node', 'host', 'resource'] as const,
      registers,
      collect() {
        this.reset();
        for (const node of nodes()) for (const [resource, amount] of Object.entries(of(node))) this.set({ node: node.nodeId, host: node.hostname, resource }, amount);
      },
    });
  resources('shoal_node_resources_total', "The node's resources", (node) => node.resources);
  resources('shoal_node_resources_available', "The node's resources not leased, as it last reported", (node) => node.available);
  return registry;
}
