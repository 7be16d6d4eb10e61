// Object metadata the API server would fill in, made locally: uids, timestamps,
// and the name rules that also keep names safe to use as file names.
import { createHash } from 'node:crypto';
import { InvalidObjectError } from './errors.ts';
import { quote } from '../../util/quote.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const DEFAULT_NAMESPACE = 'default';

/** A namespace: an RFC 1123 label (at most 63 characters). */
export function isNamespace(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value);
}

/** An object name: an RFC 1123 subdomain (at most 253 characters). */
export function isObjectName(value: string): boolean {
  return value.length <= 253 && DNS_SUBDOMAIN.test(value);
}

/** Throws an InvalidObjectError unless namespace and name are valid (and so safe as path parts). */
export function checkObjectKey(kind: string, namespace: string, name: string): void {
  if (!isNamespace(namespace)) {
    throw new InvalidObjectError(`${kind} namespace ${quote(namespace)} is not a DNS label`);
  }
  if (!isObjectName(name)) {
    throw new InvalidObjectError(`${kind} name ${quote(name)} is not a DNS subdomain`);
  }
}

/**
 * A uid that is the same every time for the same kind, namespace and name, so
 * that owner references survive restarts; shaped as a UUID (version 8).
 */
export function stableUid(kind: string, namespace: string, name: string): string {
  const h = createHash('sha256').update(`edgebridge.io/${kind}/${namespace}/${name}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x80;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return [
    hex.slice(0, 8),
    hex.slice(8, 12),
    hex.slice(12, 16),
    hex.slice(16, 20),
    hex.slice(20, 32),
  ].join('-');
}

/** A timestamp as the API server writes it (RFC 3339, whole seconds, UTC). */
export function timestamp(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A JSON round trip: what a stored object holds (no undefined fields), for comparisons. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
