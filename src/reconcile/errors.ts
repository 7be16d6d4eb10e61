/** A key's state is wrong in a way only a change can fix (bad config): logged, counted, never retried. */
export class TerminalError extends Error {
  readonly code = 'EDGEBRIDGE_RECONCILE_TERMINAL';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

/**
 * Something a reconcile needs is unavailable for now: retried with the key's
 * backoff. Any other error a reconciler throws is treated the same way.
 */
export class UnavailableError extends Error {
  readonly code = 'EDGEBRIDGE_RECONCILE_UNAVAILABLE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UnavailableError';
  }
}
