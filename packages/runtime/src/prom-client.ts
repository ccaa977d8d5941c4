import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

let loaded: typeof PromClient | undefined;

/**
 * prom-client, loaded when metrics are first made: it and the modules it pulls in (~85 files,
 * ~45 ms on 2 cores) are needed only by a node whose metrics are served (a cluster's node, the
 * head), not by every program that imports Shoal. CommonJS, so a synchronous `require` can load
 * it at that point.
 *
 * @example
 * ```ts
 * const registry = new (promClient().Registry)();
 * ```
 */
export function promClient(): typeof PromClient {
  return (loaded ??= createRequire(import.meta.url)('prom-client') as typeof PromClient);
}
