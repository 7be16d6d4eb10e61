import type { Device, DeviceSlice, Discovery } from '../../src/api/types.ts';
import { RegistryConflictError, RegistryUnsupportedError } from '../../src/registry/errors.ts';
import type { Registry, TokenReviewStatus } from '../../src/registry/registry.ts';

/**
 * A registry held in memory for unit tests of the agent's logic: the test
 * sets the Discoveries the watch reports, reads the slices written, and may
 * put a hook in front of a slice deletion or a node-label read (to hold it or
 * fail it).
 */
export class MemoryRegistry implements Registry {
  readonly kind = 'embedded' as const;
  /** Slices written and not deleted, by "namespace/name". */
  readonly slices = new Map<string, DeviceSlice>();
  onRemove: ((namespace: string, name: string) => Promise<void>) | undefined;
  readonly #sliceWatchers = new Set<() => void>();
  nodeLabelsHook: (() => Promise<Record<string, string>>) | undefined;
  #onChange: ((discoveries: Discovery[]) => void) | undefined;
  #discoveries: Discovery[] = [];
  #version = 0;

  /** Replaces the Discoveries; the agent's watch hears of it at once. */
  setDiscoveries(discoveries: Discovery[]): void {
    this.#discoveries = discoveries.map((d) => ({
      ...d,
      metadata: { ...d.metadata, resourceVersion: String(++this.#version) },
    }));
    const onChange = this.#onChange;
    if (onChange !== undefined) queueMicrotask(() => onChange(this.#discoveries));
  }

  /** Ids of the devices in the slices of one Discovery. */
  devicesOf(discovery: string): string[] {
    return [...this.slices.values()]
      .filter((s) => s.spec.discovery === discovery)
      .flatMap((s) => s.spec.devices.map((d) => d.id))
      .sort();
  }

  async watchDiscoveries(
    onChange: (discoveries: Discovery[]) => void,
    signal: AbortSignal,
  ): Promise<void> {
    this.#onChange = onChange;
    queueMicrotask(() => onChange(this.#discoveries));
    await untilAborted(signal);
  }

  listDiscoveries(): Promise<Discovery[]> {
    return Promise.resolve(this.#discoveries);
  }

  readValue(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }

  nodeLabels(): Promise<Record<string, string>> {
    return this.nodeLabelsHook?.() ?? Promise.resolve({});
  }

  /** Reports nothing: the agent then reads the labels with nodeLabels(). */
  async watchNodeLabels(_node: string, _onLabels: unknown, signal: AbortSignal): Promise<void> {
    await untilAborted(signal);
  }

  async watchNodeSlices(
    node: string,
    onChange: (slices: DeviceSlice[]) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const emit = () => onChange([...this.slices.values()].filter((s) => s.spec.node === node));
    this.#sliceWatchers.add(emit);
    queueMicrotask(emit);
    await untilAborted(signal);
    this.#sliceWatchers.delete(emit);
  }

  putSlice(slice: DeviceSlice): Promise<DeviceSlice> {
    const key = `${slice.metadata.namespace ?? 'default'}/${slice.metadata.name}`;
    const current = this.slices.get(key);
    if (current?.metadata.resourceVersion !== slice.metadata.resourceVersion)
      return Promise.reject(new RegistryConflictError(`${key} changed`));
    const stored = {
      ...slice,
      metadata: {
        ...slice.metadata,
        resourceVersion: String(Number(current?.metadata.resourceVersion ?? 0) + 1),
      },
    };
    this.slices.set(key, stored);
    this.#changed();
    return Promise.resolve(stored);
  }

  async deleteSlice(namespace: string, name: string): Promise<void> {
    await this.onRemove?.(namespace, name);
    this.slices.delete(`${namespace}/${name}`);
    this.#changed();
  }

  #changed(): void {
    for (const emit of this.#sliceWatchers) queueMicrotask(emit);
  }

  listDevices(): Promise<Device[]> {
    return Promise.resolve([]);
  }

  reviewToken(): Promise<TokenReviewStatus> {
    return Promise.reject(new RegistryUnsupportedError('no token reviews in memory'));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true }),
  );
}
