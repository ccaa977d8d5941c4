// `@shoal/runtime/cluster`: what runs a cluster — the head, a node's cluster agent, the daemon of
// `shoal start` and its control — for the CLI and the daemon. An embedded program (`init()`, the
// store, tasks on this machine) never loads it: it is ~50 modules and `ws` that the package's
// main entry would otherwise make every driver load before its first line runs.
export { Head, type HeadOptions } from './head/head.js';
export type { ClusterFailure, ClusterObject, ClusterObjects, ClusterTasks, ClusterTimeline, ClusterNodeLog, TraceEvent } from './head/cluster-views.js';
export { isLoopback, MIN_EXPOSED_TOKEN_LENGTH } from './head/loopback.js';
export { HeadLink, connectToHead, queryStatus } from './node/head-link.js';
export { ClusterNode, type ClusterNodeOptions, type ClusterNodeState } from './node/cluster-node.js';
export { wsStream } from '../transport/ws-stream.js';
export {
  DAEMON_ENTRY,
  runDaemon,
  startDaemon,
  stopDaemon,
  type DaemonStart,
  type DaemonStop,
} from './daemon/daemon-control.js';
export { resolveDaemonOptions, type DaemonConfig, type DaemonOptions, type OptionLabel } from './daemon/daemon-options.js';
