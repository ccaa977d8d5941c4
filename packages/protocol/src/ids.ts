import { customAlphabet } from 'nanoid';
import { argumentError } from './errors/argument-error.js';

// Ids become file names under /dev/shm, so they use a file-name-safe alphabet and are validated
// wherever they arrive from outside the process (a ref decoded from bytes is untrusted input).
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const objectId = customAlphabet(ALPHABET, 20);
const sessionId = customAlphabet(ALPHABET, 12);

/** What {@link isValidId} accepts; message schemas check ids with it too. */
export const ID_PATTERN = /^[0-9A-Za-z_-]{1,64}$/;

/** A new object id: 20 alphanumeric characters (~119 bits). */
export function newObjectId(): string {
  return objectId();
}

/** A new session id: 12 alphanumeric characters. */
export function newSessionId(): string {
  return sessionId();
}

/** Whether `id` can safely name a file: 1–64 characters of `[0-9A-Za-z_-]`. */
export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

/** What {@link checkObjectName} accepts; message schemas check names with it too. */
/**
 * The name of a file the node lends a worker to fill with a task result (`lent.N` in the session
 * directory): a name, never a path, and never an object id (ids have no dot).
 */
export const LENT_FILE_PATTERN = /^lent\.[0-9]{1,15}$/;

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

/**
 * Checks the name of a named object: 1–200 characters of letters, digits and `. _ : / -`,
 * starting with a letter or digit.
 * @throws TypeError naming the bad name.
 */
export function checkObjectName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw argumentError('ERR_INVALID_ARGUMENT',
      'Expected an object name of 1-200 letters, digits and `. _ : / -` starting with a letter or digit, got `' +
        `${typeof name === 'string' ? JSON.stringify(name) : String(name)}\``,
    );
  }
  return name;
}
