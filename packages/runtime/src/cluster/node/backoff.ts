/** How a node waits between attempts to reach its head again. */
export interface BackoffOptions {
  /** The ceiling of the first wait; each later attempt doubles it. @default 100 */
  readonly minMs?: number;
  /** The most any wait can be. @default 5000 */
  readonly maxMs?: number;
  /** A number in [0, 1), injected by tests. @default Math.random */
  readonly random?: () => number;
}

/**
 * The wait before reconnection attempt `attempt` (0 for the first after a drop): exponential
 * with "full jitter", uniform in [0, min(maxMs, minMs × 2^attempt)]. The jitter spreads the nodes
 * of a cluster whose head restarted, so they do not all reconnect in the same instant.
 * @example
 * setTimeout(reconnect, backoffDelay(failures++));
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const minMs = options.minMs ?? 100;
  const maxMs = options.maxMs ?? 5000;
  // 2 ** attempt overflows to Infinity long after the cap is reached: min() handles both.
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt));
  return Math.round((options.random ?? Math.random)() * ceiling);
}
