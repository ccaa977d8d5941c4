import type { WireFailure } from '@shoal/protocol';

/**
 * Why a pull from one holder failed:
 * - `unreachable`: the data connection could not be opened;
 * - `closed`: the connection closed (before or during the pull);
 * - `idle`: the holder closed it as idle (4004) as this pull was on its way: asking again on a new connection is right;
 * - `unresponsive`: the holder stopped answering pings;
 * - `protocol`: the holder sent something that breaks the data protocol;
 * - `missing`: the holder answered that it does not have the object (see {@link PullFailure.failure}).
 */
export type PullFailureCode = 'unreachable' | 'closed' | 'idle' | 'unresponsive' | 'protocol' | 'missing';

/**
 * A pull from one holder did not give the object. Internal to the transfer layer: the
 * {@link ObjectPuller} tries the next holder, and what reaches users is an `ObjectLostError`
 * naming each holder's failure, or the object's own failure when its task failed
 * ({@link PullFailure.failure}).
 */
export class PullFailure extends Error {
  override readonly name = 'PullFailure';
  readonly code: PullFailureCode;
  /** Set when the holder has the object as a failure (its task failed): that is the answer. */
  readonly failure: WireFailure | undefined;

  constructor(code: PullFailureCode, message: string, options: { failure?: WireFailure | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.failure = options.failure;
  }
}
