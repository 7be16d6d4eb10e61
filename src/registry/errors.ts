import { ApiException } from '@kubernetes/client-node';

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

/** True if an error is worth retrying later. */
export function isRetryable(err: unknown): boolean {
  return err instanceof RegistryUnavailableError || err instanceof RegistryConflictError;
}

/** The HTTP status of a Kubernetes API error, or undefined for transport errors. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** Maps a Kubernetes client error onto the registry's error classes. */
export function classifyApiError(err: unknown, what: string): Error {
  const status = apiStatus(err);
  const reason = apiMessage(err);
  if (status === undefined)
    return new RegistryUnavailableError(`${what}: ${reason}`, { cause: err });
  if (status === 409) return new RegistryConflictError(`${what}: ${reason}`, { cause: err });
  if (status === 429 || status >= 500)
    return new RegistryUnavailableError(`${what}: HTTP ${status}: ${reason}`, { cause: err });
  return new RegistryRejectedError(`${what}: HTTP ${status}: ${reason}`, status, { cause: err });
}

function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: unknown };
        if (typeof parsed.message === 'string') return parsed.message;
      } catch {
        return body.slice(0, 500);
      }
    }
    if (
      body !== null &&
      typeof body === 'object' &&
      'message' in body &&
      typeof body.message === 'string'
    )
      return body.message;
  }
  return err instanceof Error ? err.message : String(err);
}
