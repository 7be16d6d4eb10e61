import {
  RegistryConflictError,
  RegistryRejectedError,
  RegistryUnavailableError,
} from '../errors.ts';
import { KubeApiError } from './client/errors.ts';

/** The HTTP status of a Kubernetes API error, or undefined for transport and other errors. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof KubeApiError ? err.status : undefined;
}

/** Maps a Kubernetes client error onto the registry's error classes. */
export function classifyApiError(err: unknown, what: string): Error {
  const status = apiStatus(err);
  const reason = err instanceof Error ? err.message : String(err);
  if (status === undefined)
    return new RegistryUnavailableError(`${what}: ${reason}`, { cause: err });
  if (status === 409) return new RegistryConflictError(`${what}: ${reason}`, { cause: err });
  // 401/403 are retried too: a restarted API server refuses requests until its
  // authorizer has synced, and RBAC may be granted after the agent starts.
  if (status === 401 || status === 403 || status === 429 || status >= 500)
    return new RegistryUnavailableError(`${what}: HTTP ${status}: ${reason}`, { cause: err });
  return new RegistryRejectedError(`${what}: HTTP ${status}: ${reason}`, status, { cause: err });
}
