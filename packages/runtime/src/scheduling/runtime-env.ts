import type { ResolvedRuntimeEnv } from '../options.js';

/** The environment of the node's own workers (a task without a runtimeEnv runs on one of them). */
export const NODE_ENV_KEY = '';

const keys = new WeakMap<ResolvedRuntimeEnv, string>();

/**
 * Which workers may run a task with this runtimeEnv: those started for an equal one (same
 * variables, same directory). Computed once per runtimeEnv object.
 */
export function envKeyOf(runtimeEnv: ResolvedRuntimeEnv | undefined): string {
  if (runtimeEnv === undefined) return NODE_ENV_KEY;
  let key = keys.get(runtimeEnv);
  if (key === undefined) {
    key = JSON.stringify([runtimeEnv.cwd ?? null, Object.entries(runtimeEnv.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
    keys.set(runtimeEnv, key);
  }
  return key;
}
