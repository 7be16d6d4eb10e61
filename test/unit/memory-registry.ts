import type { Device, Discovery } from '../../src/api/types.ts';
import { RegistryUnsupportedError } from '../../src/registry/errors.ts';
import type { DeviceView, Registry, TokenReviewStatus } from '../../src/registry/registry.ts';

/**
 * A registry held in memory for unit tests of the agent's logic: the test
 * sets the Discoveries the watch reports, reads the devices applied, and may
 * put a hook in front of a device removal or a node-label read (to hold it or
 * fail it).
 */
export class MemoryRegistry implements Registry {
  readonly kind = 'embedded' as const;
  /** Devices applied and not removed, by "namespace/name". */
  readonly devices = new Map<string, DeviceView>();
  onRemove: ((namespace: string, name: string) => Promise<void>) | undefined;
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

  /** Names of the applied devices of one Discovery. */
  devicesOf(discovery: string): string[] {
    return [...this.devices.values()]
      .filter((v) => v.spec.discovery === discovery)
      .map((v) => v.name)
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

  updateDiscoveryStatus(): Promise<void> {
    return Promise.resolve();
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

  applyDevice(view: DeviceView): Promise<void> {
    this.devices.set(`${view.namespace}/${view.name}`, view);
    return Promise.resolve();
  }

  async removeDeviceNode(namespace: string, name: string): Promise<void> {
    await this.onRemove?.(namespace, name);
    this.devices.delete(`${namespace}/${name}`);
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
