// The part of autocannon 8's programmatic API that recommender-load.ts uses. autocannon ships no
// types; a local declaration keeps @types/autocannon (which trails the package) out of the tree.
// Shapes follow autocannon's README ("API" and "Results") and lib/run.js.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  export interface RequestParams {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }

  export interface Request extends RequestParams {
    /** Called before every send of this request; returns the request to send. */
    setupRequest?: (request: RequestParams, context: Record<string, unknown>) => RequestParams | undefined;
    onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void;
  }

  export interface Options {
    url: string;
    connections?: number;
    /** Seconds. */
    duration?: number;
    /** Seconds to wait for a response before counting a timeout (an error). */
    timeout?: number;
    pipelining?: number;
    method?: string;
    title?: string;
    requests?: Request[];
  }

  /** hdr-histogram-percentiles-obj: latency in ms, requests and throughput per second. */
  export interface Histogram {
    average: number;
    mean: number;
    stddev: number;
    min: number;
    max: number;
    total: number;
    p2_5: number;
    p50: number;
    p75: number;
    p90: number;
    p97_5: number;
    p99: number;
    p99_9: number;
  }

  export interface Result {
    title?: string;
    url: string;
    latency: Histogram & { totalCount: number };
    /** `total` counts completed responses; `sent` counts requests sent. */
    requests: Histogram & { sent: number };
    throughput: Histogram;
    /** Seconds actually run. */
    duration: number;
    errors: number;
    timeouts: number;
    mismatches: number;
    non2xx: number;
    resets: number;
    '2xx': number;
    statusCodeStats: Record<string, { count: number }>;
  }

  /** Without a callback the returned tracker is also a promise of the result. */
  export interface Instance extends EventEmitter, PromiseLike<Result> {
    stop(): void;
  }

  function autocannon(options: Options): Instance;
  export default autocannon;
}
