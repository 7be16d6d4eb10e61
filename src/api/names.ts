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

/** A DeviceSlice name is a DNS subdomain name: at most 253 characters. */
const MAX_SLICE_NAME = 253;

/**
 * The name of a node's `index`th DeviceSlice of a Discovery:
 * `<discovery>-<node>-<index>`; when that is too long, the two names are cut
 * and a hash of both added, so that names stay unique and stable.
 */
export function sliceName(discovery: string, node: string, index: number): string {
  const plain = `${discovery}-${node}-${index}`;
  if (plain.length <= MAX_SLICE_NAME) return plain;
  const hash = createHash('sha256')
    .update(`${discovery}\u0000${node}`)
    .digest('hex')
    .slice(0, HASH_LENGTH);
  const room = MAX_SLICE_NAME - HASH_LENGTH - String(index).length - 3;
  const d = discovery.slice(0, Math.ceil(room / 2)).replace(/[-.]+$/, '');
  const n = node.slice(0, room - d.length).replace(/[-.]+$/, '');
  return `${d}-${n}-${hash}-${index}`;
}
