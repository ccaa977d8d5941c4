/**
 * A command line the `shoal` CLI cannot run (an unknown command or flag, a flag's bad value):
 * it prints the message and a pointer to `--help`, and exits with code 2. Only the CLI throws
 * it, so it lives beside the CLI rather than among the errors a program can see.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
