import { readdirSync } from 'node:fs';
import { ShmError } from './segment.js';
import { native } from './native.js';

/** This process's file descriptors: how many are open and its RLIMIT_NOFILE. */
export interface DescriptorUsage {
  /** Descriptors open now, or undefined when even listing them failed (the table is full). */
  readonly open: number | undefined;
  /** The soft limit: opening one more past it fails with EMFILE. `Infinity` when unlimited. */
  readonly limit: number;
  /** The hard limit, the most the soft one can be raised to without privileges. */
  readonly hardLimit: number;
}

function limitOf(raise: boolean): { soft: number; hard: number } {
  try {
    return native.descriptorLimit(raise);
  } catch (error) {
    const e = error as Error & { code?: string; errno?: number; syscall?: string };
    throw new ShmError({ code: e.code ?? 'EINVAL', errno: e.errno ?? 0, syscall: e.syscall ?? 'getrlimit', path: 'RLIMIT_NOFILE' }, { cause: error });
  }
}

/**
 * The descriptors this process has open and its limits. Counting reads `/proc/self/fd`, which
 * itself needs a descriptor: when none is left, `open` is undefined.
 *
 * @example
 * ```ts
 * const { open, limit } = descriptorUsage(); // e.g. { open: 42, limit: 1048576, hardLimit: 1048576 }
 * ```
 */
export function descriptorUsage(): DescriptorUsage {
  const { soft, hard } = limitOf(false);
  let open: number | undefined;
  try {
    open = readdirSync('/proc/self/fd').length - 1; // the listing's own descriptor
  } catch {
    open = undefined;
  }
  return { open, limit: soft, hardLimit: hard };
}

/**
 * Raises this process's soft descriptor limit to its hard limit (as Go and Ray do at start) and
 * returns the limits now in force. A daemon calls it first thing: processes it spawns inherit it.
 * @throws ShmError when the kernel refuses (it should not: an unprivileged process may always
 *   raise its soft limit up to the hard one).
 */
export function raiseDescriptorLimit(): { readonly limit: number; readonly hardLimit: number } {
  const { soft, hard } = limitOf(true);
  return { limit: soft, hardLimit: hard };
}
