import { createHash } from 'node:crypto';

/**
 * The Device name for a device of a Discovery: `<discovery>-<hash>`, where the
 * hash covers the device id, plus the node for local devices (two nodes' USB
 * devices with the same id are different devices). Stable across restarts.
 */
export function deviceName(discovery: string, id: string, shared: boolean, node: string): string {
  const identity = shared ? id : `${id}\u0000${node}`;
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, HASH_LENGTH);
  return `${discoveryPart(discovery)}-${hash}`;
}

const HASH_LENGTH = 10;

/** The part of a Discovery's name a Device name starts with (a DNS subdomain name is at most 253 characters). */
export function discoveryPart(discovery: string): string {
  return discovery.slice(0, 253 - HASH_LENGTH - 1);
}

/** The discoveryPart() a Device name was made from, or undefined if it is not such a name. */
export function discoveryPartOf(device: string): string | undefined {
  const m = /^(.+)-[0-9a-f]{10}$/.exec(device);
  return m?.[1];
}
