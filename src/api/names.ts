import { createHash } from 'node:crypto';

/**
 * The Device name for a device of a Discovery: `<discovery>-<hash>`, where the
 * hash covers the device id, plus the node for local devices (two nodes' USB
 * devices with the same id are different devices). Stable across restarts.
 */
export function deviceName(discovery: string, id: string, shared: boolean, node: string): string {
  const identity = shared ? id : `${id}\u0000${node}`;
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, 10);
  // A DNS subdomain name is at most 253 characters.
  return `${discovery.slice(0, 253 - hash.length - 1)}-${hash}`;
}
