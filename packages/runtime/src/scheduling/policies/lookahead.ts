/** How many ready tasks a scheduling pass looks past a head that does not fit. */
export const SCHEDULING_LOOKAHEAD = 64;

/**
 * First-come first-served, but a head that does not fit yet must not hold back smaller tasks
 * behind it: the index of the first of the first `limit` ready tasks that can start, or -1.
 */
export function firstStartable<T>(
  count: number,
  at: (index: number) => T,
  startable: (task: T) => boolean,
  limit = SCHEDULING_LOOKAHEAD,
): number {
  const end = Math.min(count, limit);
  for (let index = 0; index < end; index++) if (startable(at(index))) return index;
  return -1;
}
