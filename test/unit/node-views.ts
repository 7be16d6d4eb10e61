import {
  API_VERSION,
  LABEL_DISCOVERY,
  LABEL_NODE,
  type DeviceSlice,
  type Discovery,
  type SliceDevice,
} from '../../src/api/types.ts';
import { sliceName } from '../../src/api/names.ts';
import type { SliceStore } from '../../src/registry/registry.ts';

/**
 * What nodes see, written as an agent would: each node's first slice of a
 * Discovery, put through a registry's SliceStore. For tests of what the
 * registry makes of slices (Devices, counts) without running an agent.
 */
export class NodeViews {
  readonly #store: SliceStore;
  readonly #slices = new Map<string, DeviceSlice>();

  constructor(store: SliceStore) {
    this.#store = store;
  }

  /** Adds (or replaces, by id) a device in the node's slice. */
  async add(discovery: Discovery, node: string, device: SliceDevice, shared = true): Promise<void> {
    const devices = this.#devicesOf(discovery, node).filter((d) => d.id !== device.id);
    await this.set(discovery, node, [...devices, device], shared);
  }

  /** Takes a device out of the node's slice. */
  async remove(discovery: Discovery, node: string, id: string): Promise<void> {
    const held = this.#slices.get(this.#key(discovery, node));
    const devices = this.#devicesOf(discovery, node).filter((d) => d.id !== id);
    await this.set(discovery, node, devices, held?.spec.shared ?? true);
  }

  /** Writes the node's slice listing exactly `devices`. */
  async set(
    discovery: Discovery,
    node: string,
    devices: SliceDevice[],
    shared = true,
  ): Promise<void> {
    const key = this.#key(discovery, node);
    const previous = this.#slices.get(key);
    const name = discovery.metadata.name;
    const stored = await this.#store.putSlice({
      apiVersion: API_VERSION,
      kind: 'DeviceSlice',
      metadata: {
        name: sliceName(name, node, 0),
        namespace: discovery.metadata.namespace ?? 'default',
        labels: { [LABEL_NODE]: node, [LABEL_DISCOVERY]: name },
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: 'Discovery',
            name,
            uid: discovery.metadata.uid ?? '',
            controller: true,
          },
        ],
        ...(previous?.metadata.resourceVersion !== undefined
          ? { resourceVersion: previous.metadata.resourceVersion }
          : {}),
      },
      spec: { node, discovery: name, shared, devices, deviceCount: devices.length },
    });
    this.#slices.set(key, stored);
  }

  #devicesOf(discovery: Discovery, node: string): SliceDevice[] {
    return this.#slices.get(this.#key(discovery, node))?.spec.devices ?? [];
  }

  #key(discovery: Discovery, node: string): string {
    return `${discovery.metadata.namespace ?? 'default'}/${discovery.metadata.name}/${node}`;
  }
}
