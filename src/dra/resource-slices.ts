// The ResourceSlices of one node's pool, as a pure function of the devices it
// sees: sorted by device name, at most 128 per slice, one pool named after
// the node. The publisher adds the generation and owner.
import { createHash } from 'node:crypto';
import { attributesOf, type DeviceAttribute } from './attributes.ts';
import { MAX_SLICE_DEVICES } from './driver.ts';
import type { NodeDevice } from './node-device.ts';

/** One device of a ResourceSlice (resource.k8s.io/v1 Device). */
export interface SliceDevice {
  name: string;
  attributes: Record<string, DeviceAttribute>;
}

/** One slice as wanted: its object name and devices. */
export interface WantedSlice {
  name: string;
  devices: SliceDevice[];
}

/** The node's pool as wanted, and what each device left out of its attributes. */
export interface WantedPool {
  slices: WantedSlice[];
  /** DRA device name to its device, for the kubelet plugin. */
  byName: Map<string, NodeDevice>;
  /** Per Device (namespace/name): attributes left out and why. */
  skipped: Map<string, string[]>;
}

const hash = (text: string, length: number): string =>
  createHash('sha256').update(text).digest('hex').slice(0, length);

/** Start of a DNS label: lower-case letters, digits and '-', starting and ending alphanumeric. */
function labelPart(text: string, max: number): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, max)
    .replace(/^-+|-+$/g, '');
}

/**
 * A Device's name in the pool: a DNS label (the API's rule) made of the start
 * of its name and a hash of namespace/name, so that two namespaces' Devices
 * of the same name stay apart and the name is stable across restarts.
 */
export function draDeviceName(namespace: string, name: string): string {
  const start = labelPart(name, 46);
  const h = hash(`${namespace}/${name}`, 16);
  return start === '' ? `d-${h}` : `${start}-${h}`;
}

/** The name of the node's i-th ResourceSlice (a DNS subdomain, stable for the node). */
export function sliceName(node: string, index: number): string {
  const start = labelPart(node, 40);
  return `${start === '' ? 'node' : start}-${hash(node, 8)}-edgebridge-${index}`;
}

/** The wanted slices of a node that sees `devices` (a device listed twice counts once). */
export function wantedPool(node: string, devices: readonly NodeDevice[]): WantedPool {
  const byName = new Map<string, NodeDevice>();
  for (const d of devices) byName.set(draDeviceName(d.namespace, d.name), d);
  const names = [...byName.keys()].sort();
  const skipped = new Map<string, string[]>();
  const all: SliceDevice[] = names.map((name) => {
    const device = byName.get(name) as NodeDevice;
    const a = attributesOf(device);
    if (a.skipped.length > 0) skipped.set(`${device.namespace}/${device.name}`, a.skipped);
    return { name, attributes: a.attributes };
  });
  const slices: WantedSlice[] = [];
  for (let i = 0; i * MAX_SLICE_DEVICES < all.length; i++) {
    slices.push({
      name: sliceName(node, i),
      devices: all.slice(i * MAX_SLICE_DEVICES, (i + 1) * MAX_SLICE_DEVICES),
    });
  }
  return { slices, byName, skipped };
}
