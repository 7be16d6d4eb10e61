/**
 * What one reconcile of a key ended in, besides the two errors of errors.ts:
 * done (nothing more to do until the key is added again), requeue after a
 * fixed delay (e.g. a grace period ends then), or requeue with the key's
 * backoff (not done yet, nothing wrong).
 */
export type Result =
  | { readonly outcome: 'done' }
  | { readonly outcome: 'requeue-after'; readonly ms: number }
  | { readonly outcome: 'requeue' };

export const done: Result = Object.freeze({ outcome: 'done' });

export function requeueAfter(ms: number): Result {
  return { outcome: 'requeue-after', ms };
}

export const requeue: Result = Object.freeze({ outcome: 'requeue' });

/** How a reconcile ended, as the metrics and logs name it. */
export type Outcome = 'done' | 'requeue_after' | 'requeue' | 'error' | 'terminal';
