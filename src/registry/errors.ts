/** The registry cannot be reached or is overloaded; retried with backoff. */
export class RegistryUnavailableError extends Error {
  readonly code = 'EDGEBRIDGE_REGISTRY_UNAVAILABLE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RegistryUnavailableError';
  }
}

/** The registry refused a request as wrong (bad object, no permission); never retried. */
export class RegistryRejectedError extends Error {
  readonly code = 'EDGEBRIDGE_REGISTRY_REJECTED';
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RegistryRejectedError';
    this.status = status;
  }
}

/** Someone else changed the object first; retried soon, after re-reading state. */
export class RegistryConflictError extends Error {
  readonly code = 'EDGEBRIDGE_REGISTRY_CONFLICT';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RegistryConflictError';
  }
}

/** The back end cannot do this at all (e.g. a TokenReview without a cluster); never retried. */
export class RegistryUnsupportedError extends Error {
  readonly code = 'EDGEBRIDGE_REGISTRY_UNSUPPORTED';
  constructor(message: string) {
    super(message);
    this.name = 'RegistryUnsupportedError';
  }
}

/** True if an error is worth retrying later. */
export function isRetryable(err: unknown): boolean {
  return err instanceof RegistryUnavailableError || err instanceof RegistryConflictError;
}
