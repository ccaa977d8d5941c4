export { functionSource, type FunctionSource } from './api/function-source.js';
export { compileFunction } from './api/compile-function.js';
export { NODE_MANAGER_OPTION_KEYS, NodeManager, type NodeManagerOptions, type NodeState } from './node/node-manager.js';
export { NodeMetrics } from './node/node-metrics.js';
export { TIMELINE_KEPT, Timeline } from './node/timeline.js';
export {
  NODE_OPTION_KEYS,
  checkOptionNames,
  resolveNodeOptions,
  resolveRemoteOptions,
  type ActorOptions,
  type NodeOptions,
  type RemoteOptions,
  type ResolvedRemoteOptions,
  type RuntimeEnv,
} from './options.js';
export { remote, type RemoteArgs, type RemoteFunction, type RemoteResult } from './api/remote.js';
export type { NotStorable, Storable } from './api/storable.js';
export { makeActor, type Actor, type ActorClass, type ActorMethod, type ActorMethodResult } from './api/actor.js';
export { ObjectStream, type StreamItem } from './api/stream.js';
export { currentRuntime, setCurrentRuntime, type NamedVersion, type Runtime, type WaitResult } from './api/runtime.js';
export { attachToNode, parseNodeAddress } from './client/attach.js';
export { NodeClient } from './client/node-client.js';
export type { LogFn, Logger } from './log.js';
export { PRETTY_OPTIONS, prettyLogLine, processLogger } from './log.js';
export { readLog, type LogLines } from './log-file.js';
export {
  ensureHome,
  isRunning,
  liveDaemon,
  logPath,
  readDaemon,
  readToken,
  removeDaemon,
  shoalHome,
  writeToken,
  type DaemonInfo,
  type TokenKind,
} from './cluster/daemon/home.js';

// What the public `shoal` package shows of the lower layers (it imports only this package):
// every error class (also at '@shoal/runtime/errors', errors.ts), refs, and the store's public
// types. The errors are re-exported from protocol here, not through './errors.js': the build's
// bundle keeps another package's `export *` only in an entry itself (scripts/bundle-dist.mjs).
export * from '@shoal/protocol/errors';
export { ActorHandle, ObjectRef, argumentError, type ActorCallOptions, type ObjectRefJSON } from '@shoal/protocol';
export type { ObjectWriter, StoreOptions, StoreStats, TypedArrayKind } from '@shoal/store';
export type { ObjectTransferMessage, TaskEndMessage, TaskFailMessage, TaskStartMessage } from './diagnostics.js';
export type { ObjectFreeMessage, ObjectPutMessage } from '@shoal/store';
export { PROGRESS_MIN_BYTES, progressBar, progressWanted, showCopyProgress, type ProgressStream } from './client/progress.js';
