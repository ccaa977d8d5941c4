/**
 * Codes of the `TypeError`s and `RangeError`s Shoal throws for a bad argument, as Node's own
 * (`ERR_INVALID_ARG_TYPE`) are: the error stays a `TypeError` (or `RangeError`), so
 * `instanceof TypeError` holds, and carries a stable `code` to branch on.
 */
export type ArgumentErrorCode =
  /** An argument or option of the wrong type, or a value it does not take. */
  | 'ERR_INVALID_ARGUMENT'
  /** An option name that is not one of the call's (the message names the likely one). */
  | 'ERR_UNKNOWN_OPTION'
  /** A number outside what the call takes (a `RangeError`). */
  | 'ERR_OUT_OF_RANGE'
  /** A value `store.put` (or a task argument or result) cannot store; the message names its path. */
  | 'ERR_NOT_STORABLE'
  /** A function or class `remote()`/`actor()` cannot ship to a worker (it captures variables, is native...). */
  | 'ERR_NOT_REMOTABLE';

/** The `TypeError` (a `RangeError` for `ERR_OUT_OF_RANGE`) Shoal throws for a bad argument. */
export type ArgumentError<C extends ArgumentErrorCode = ArgumentErrorCode> = (C extends 'ERR_OUT_OF_RANGE' ? RangeError : TypeError) & {
  readonly code: C;
};

/** Every {@link ArgumentErrorCode}, for checks and docs. */
export const ARGUMENT_ERROR_CODES: readonly ArgumentErrorCode[] = ['ERR_INVALID_ARGUMENT', 'ERR_UNKNOWN_OPTION', 'ERR_OUT_OF_RANGE', 'ERR_NOT_STORABLE', 'ERR_NOT_REMOTABLE'];

/**
 * A `TypeError` (or for `ERR_OUT_OF_RANGE` a `RangeError`) with `code`.
 *
 * @example
 * ```ts
 * throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`timeoutMs\` to be a number, got \`${value}\``);
 * ```
 */
export function argumentError<C extends ArgumentErrorCode>(code: C, message: string, options?: ErrorOptions): ArgumentError<C> {
  const error = code === 'ERR_OUT_OF_RANGE' ? new RangeError(message, options) : new TypeError(message, options);
  return Object.assign(error, { code }) as ArgumentError<C>;
}

