// The rule for who may reach a head: one on loopback is reachable only from its own machine; one
// on any other interface is reachable by anyone who can route to it, and every connection that
// knows the token can run code, so its token must be hard to guess.
import { isIP } from 'node:net';

/** The shortest token a head listening beyond loopback accepts (`shoal start` makes 48). */
export const MIN_EXPOSED_TOKEN_LENGTH = 16;

/**
 * Whether `host` is a loopback address or name (reachable only from this machine).
 *
 * @example
 * ```ts
 * isLoopback('127.0.0.1'); // true
 * isLoopback('0.0.0.0'); // false: every interface
 * ```
 */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** Why a head may not listen on `host` with `token`, or undefined when it may. */
export function exposureProblem(host: string, token: string): string | undefined {
  if (isLoopback(host) || token.length >= MIN_EXPOSED_TOKEN_LENGTH) return undefined;
  return (
    `a head reachable from other machines needs a token of at least ${MIN_EXPOSED_TOKEN_LENGTH} characters ` +
    `(anyone who can reach it and guess the token could run code), got ${token.length}. ` +
    'Pass a stronger token (`openssl rand -hex 16`), or listen on 127.0.0.1'
  );
}
