export { compileFunction, functionSource, type FunctionSource } from './function-source.js';
export { NodeManager, type NodeManagerOptions, type NodeState } from './node-manager.js';
export {
  NODE_OPTION_KEYS,
  resolveNodeOptions,
  resolveRemoteOptions,
  type NodeOptions,
  type RemoteOptions,
  type ResolvedRemoteOptions,
} from './options.js';
export { remote, type RemoteArgs, type RemoteFunction } from './remote.js';
export { currentRuntime, setCurrentRuntime, type NamedVersion, type Runtime, type WaitResult } from './runtime.js';
export { attachToNode, parseNodeAddress } from './attach.js';
export { NodeClient } from './node-client.js';
export { Head, type HeadOptions } from './cluster/head.js';
export { HeadLink, connectToHead, queryStatus } from './cluster/head-link.js';
export {
  ensureHome,
  isRunning,
  logPath,
  readDaemon,
  readToken,
  removeDaemon,
  shoalHome,
  writeToken,
  type DaemonInfo,
} from './cluster/home.js';
