// Where shared devices' slot claims live: the Device's status.usage on the API
// server, written with optimistic concurrency so that two nodes never both
// win one slot.
import { GROUP, LABEL_DISCOVERY, VERSION, type Device } from '../api/types.ts';
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';

/** The two calls slot claims need. */
export interface DeviceStore {
  /** The Device, or undefined when there is none (yet). */
  get(namespace: string, name: string, signal?: AbortSignal): Promise<Device | undefined>;
  /** The Devices of one Discovery. */
  list(namespace: string, discovery: string, signal?: AbortSignal): Promise<Device[]>;
  /**
   * Sets (string) or removes (null) usage entries, only if the Device is still
   * at `resourceVersion`: resolves with the new Device, or 'conflict'.
   */
  patchUsage(
    device: Device,
    changes: Record<string, string | null>,
    signal?: AbortSignal,
  ): Promise<Device | 'conflict'>;
}

/** A DeviceStore over the API server. */
export class KubeDeviceStore implements DeviceStore {
  readonly #client: KubeClient;
  constructor(client: KubeClient) {
    this.#client = client;
  }

  async get(namespace: string, name: string, signal?: AbortSignal): Promise<Device | undefined> {
    try {
      return await this.#client.request<Device>('GET', path(namespace, name), {
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async list(namespace: string, discovery: string, signal?: AbortSignal): Promise<Device[]> {
    const res = await this.#client.request<{ items?: Device[] }>('GET', path(namespace), {
      query: { labelSelector: `${LABEL_DISCOVERY}=${discovery}` },
      ...(signal ? { signal } : {}),
    });
    return res.items ?? [];
  }

  async patchUsage(
    device: Device,
    changes: Record<string, string | null>,
    signal?: AbortSignal,
  ): Promise<Device | 'conflict'> {
    const { namespace = '', name, resourceVersion } = device.metadata;
    // A merge patch that names the resourceVersion is refused with 409 if
    // anyone wrote the Device since it was read; it touches no other field.
    try {
      return await this.#client.request<Device>('PATCH', path(namespace, name, 'status'), {
        contentType: 'application/merge-patch+json',
        body: { metadata: { resourceVersion }, status: { usage: changes } },
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return 'conflict';
      throw err;
    }
  }
}

function path(namespace: string, name?: string, subresource?: string): string {
  return resourcePath({
    group: GROUP,
    version: VERSION,
    plural: 'devices',
    namespace,
    ...(name !== undefined ? { name } : {}),
    ...(subresource ? { subresource } : {}),
  });
}
