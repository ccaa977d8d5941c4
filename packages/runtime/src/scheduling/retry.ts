import type { Task } from './task.js';

/** Whether an exception thrown by the task's function is one its `retryExceptions` option retries. */
export function retriesException(task: Pick<Task, 'options'>, thrown: unknown): boolean {
  const retry = task.options.retryExceptions;
  return retry === true || (Array.isArray(retry) && thrown instanceof Error && retry.includes(thrown.name));
}

/** Whether a task that failed `task.attempts` times may run once more (`maxRetries` retries after the first run). */
export function mayRetry(task: Pick<Task, 'attempts' | 'options'>): boolean {
  return task.attempts <= task.options.maxRetries;
}
