// The plain HTTP side of the head's and the data servers' ports: a few GET routes (metrics, the
// dashboard and its JSON), each behind the cluster token, beside the WebSocket upgrades.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TOKEN_HEADER } from '@shoal/protocol';
import { sameToken } from './guard.js';

/** The content type of Prometheus's text format (version 0.0.4), as prom-client writes it. */
export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

/** What a route answers. */
export interface RouteAnswer {
  readonly status?: number;
  readonly type: string;
  readonly body: string;
}

/** A GET route: its answer, or a promise of it. */
export type Route = (url: URL) => RouteAnswer | Promise<RouteAnswer>;

/** Options of {@link httpRoutes}. */
export interface HttpRoutesOptions {
  readonly token: string;
  /** By path (`/metrics`). */
  readonly routes: Readonly<Record<string, Route>>;
  /** What a request for any other path gets (the port's own word: "connect with a WebSocket"). */
  readonly otherwise: RouteAnswer;
  /** Where a route that threw is reported (a bug of ours: the request gets 500). */
  readonly internalError: (fields: Readonly<Record<string, unknown>>, message: string) => void;
  /**
   * A request carried the token: its connection is the cluster's (the port's connection budget
   * lifts its handshake deadline, which would otherwise cut a keep-alive connection mid-answer).
   */
  readonly authenticated?: (socket: object) => void;
}

/** The cookie the dashboard's page carries the token in, once opened with `?token=`. */
export const TOKEN_COOKIE = 'shoal_token';

/**
 * The request handler of a port's HTTP routes. Every route needs the cluster token, in one of:
 * `Authorization: Bearer TOKEN` (how Prometheus scrapes: `authorization: { credentials: TOKEN }`),
 * the `x-shoal-token` header (the CLI's), or the `shoal_token` cookie, which a browser gets by
 * opening a route once with `?token=TOKEN` (answered with a redirect to the same path without it,
 * so the token leaves the address bar and the history). Missing or wrong: 401. Only GET (and HEAD).
 *
 * @example
 * ```ts
 * const http = createServer(httpRoutes({ token, routes: { '/metrics': async () => ({ type: TEXT, body: await metrics() }) }, otherwise, internalError }));
 * ```
 */
export function httpRoutes(options: HttpRoutesOptions): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    // Nothing a request holds may throw out of here: the server's 'request' event would take the
    // process down (Node's parser accepts targets such as `//` that URL refuses to resolve).
    try {
      serve(options, request, response);
    } catch (error) {
      answer(response, { status: 400, type: 'text/plain', body: `bad request: ${String((error as Error)?.message ?? error)}\n` });
    }
  };
}

function serve(options: HttpRoutesOptions, request: IncomingMessage, response: ServerResponse): void {
  const target = request.url ?? '/';
  const url = new URL(`http://shoal${target.startsWith('/') ? target : '/'}`);
  const route = Object.hasOwn(options.routes, url.pathname) ? options.routes[url.pathname] : undefined;
  if (!route) return answer(response, options.otherwise);
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return answer(response, { status: 405, type: 'text/plain', body: `${url.pathname} takes GET only\n` });
  }
  const fromQuery = url.searchParams.get('token');
  if (fromQuery !== null) {
    if (!sameToken(fromQuery, options.token)) return answer(response, unauthorized);
    url.searchParams.delete('token');
    response.writeHead(303, {
      location: url.pathname + url.search,
      'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(options.token)}; Path=/; HttpOnly; SameSite=Strict`,
      'cache-control': 'no-store',
    });
    response.end();
    return;
  }
  const given = tokenOf(request);
  if (given === undefined || !sameToken(given, options.token)) return answer(response, unauthorized);
  options.authenticated?.(request.socket);
  Promise.resolve()
    .then(() => route(url))
    .then(
      (result) => answer(response, result, request.method === 'HEAD'),
      (error: unknown) => {
        options.internalError({ err: error, path: url.pathname }, `the route ${url.pathname} failed: ${String((error as Error | undefined)?.message ?? error)}`);
        answer(response, { status: 500, type: 'text/plain', body: 'internal error\n' });
      },
    )
    .catch(() => response.destroy());
}

const unauthorized: RouteAnswer = {
  status: 401,
  type: 'text/plain',
  body: 'wrong or missing token: send `Authorization: Bearer TOKEN` (the cluster token, $SHOAL_HOME/token), or open the page once with ?token=TOKEN\n',
};

/** The token a request carries: a bearer header, Shoal's own header, or the dashboard's cookie. */
function tokenOf(request: IncomingMessage): string | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string' && /^bearer /i.test(authorization)) return authorization.slice(7).trim();
  const own = request.headers[TOKEN_HEADER];
  if (typeof own === 'string') return own;
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name !== TOKEN_COOKIE) continue;
    try {
      return decodeURIComponent(value.join('='));
    } catch {
      return undefined; // not a token of ours
    }
  }
  return undefined;
}

function answer(response: ServerResponse, result: RouteAnswer, headOnly = false): void {
  if (response.headersSent) return;
  response.writeHead(result.status ?? 200, { 'content-type': result.type, 'cache-control': 'no-store' });
  response.end(headOnly ? undefined : result.body);
}
