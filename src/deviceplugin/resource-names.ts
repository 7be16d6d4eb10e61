// Names the kubelet sees: extended resources, their device ids and sockets.
// All are pure functions of Device and Discovery names, so that a restarted
// agent offers the same ids and finds its claims again.
import { createHash } from 'node:crypto';

export const RESOURCE_DOMAIN = 'edgebridge.io';
/** The name part of an extended resource, and a device plugin device id, are at most 63 characters. */
const MAX_NAME = 63;
const HASH_LENGTH = 10;
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/**
 * `name` if it has at most `max` characters, else its head and a hash of the
 * whole name: deterministic, and still readable in `kubectl describe node`.
 */
export function boundedName(name: string, max = MAX_NAME): string {
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, HASH_LENGTH);
  const head = name.slice(0, max - HASH_LENGTH - 1).replace(/[^A-Za-z0-9]+$/, '');
  return `${head}-${hash}`;
}

/** `edgebridge.io/<name>` for a Device or a Discovery, shortened to a valid extended-resource name. */
export function resourceName(name: string): string {
  const part = boundedName(name);
  if (!NAME.test(part)) throw new TypeError(`${JSON.stringify(name)} cannot name a resource`);
  return `${RESOURCE_DOMAIN}/${part}`;
}

/** The device id the kubelet is offered for slot `slot` of Device `device`. */
export function slotId(device: string, slot: number): string {
  return boundedName(`${device}-${slot}`);
}

/** The socket file (in the device-plugins dir) that serves `resource`. */
export function socketName(resource: string): string {
  return `edgebridge-${resource.slice(RESOURCE_DOMAIN.length + 1)}.sock`;
}
