// The controller's Kubernetes requests over the slim client: list-watch of its
// four resources, and its few writes. Every update carries the resource
// version it was computed from, so a write based on a stale copy fails with
// 409 and the key is reconciled again from the newer one.
import type { Logger } from 'pino';
import {
  GROUP,
  VERSION,
  type Device,
  type DeviceSlice,
  type Discovery,
  type DiscoveryStatus,
} from '../api/types.ts';
import { runInformer } from '../registry/kubernetes/client/informer.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { listWatch } from '../registry/kubernetes/client/list-watch.ts';
import { resourcePath, type ResourceRef } from '../registry/kubernetes/client/paths.ts';
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import type { NodeObject } from './node-readiness.ts';

const MERGE_PATCH = 'application/merge-patch+json';

/** The resources the controller watches, by their plural, and their objects. */
export interface WatchedObject {
  devices: Device;
  discoveries: Discovery;
  deviceslices: DeviceSlice;
  nodes: NodeObject;
}
export type Watched = keyof WatchedObject;

function custom(plural: string, more: Omit<ResourceRef, 'version' | 'plural'> = {}): string {
  return resourcePath({ group: GROUP, version: VERSION, plural, ...more });
}

/** The collections watched: the namespaced ones in `namespace` only when one is given. */
function collections(namespace: string | undefined): Record<Watched, string> {
  const scope = namespace !== undefined ? { namespace } : {};
  return {
    devices: custom('devices', scope),
    discoveries: custom('discoveries', scope),
    deviceslices: custom('deviceslices', scope),
    nodes: resourcePath({ version: 'v1', plural: 'nodes' }),
  };
}

/** The HTTP status of an API error, or undefined for transport and other errors. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof KubeApiError ? err.status : undefined;
}

export interface ControllerApiOptions {
  client: KubeClient;
  log: Logger;
  /** Called after every request, for metrics. */
  onRequest?: (verb: string, resource: string, code: string) => void;
  /** Only this namespace's Discoveries, slices and Devices (undefined: every namespace). */
  namespace?: string;
}

/** contract: what the controller reads and writes in the API server; nothing else talks to it. */
export class ControllerApi {
  readonly #client: KubeClient;
  readonly #log: Logger;
  readonly #onRequest: (verb: string, resource: string, code: string) => void;
  readonly #collections: Record<Watched, string>;

  constructor(opts: ControllerApiOptions) {
    this.#client = opts.client;
    this.#collections = collections(opts.namespace);
    this.#log = opts.log;
    this.#onRequest = opts.onRequest ?? (() => undefined);
  }

  /**
   * Lists and watches every object of `what` (in all namespaces, or the one
   * given) until the
   * signal aborts: `onSync` gets the complete set after each list, `onEvent`
   * each change after that.
   */
  watch<W extends Watched>(
    what: W,
    handlers: {
      onSync: (items: WatchedObject[W][]) => void;
      onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: WatchedObject[W]) => void;
      /** What of each object is kept, applied as it is decoded. */
      transform?: (object: WatchedObject[W]) => WatchedObject[W];
    },
    signal: AbortSignal,
  ): Promise<void> {
    return runInformer<WatchedObject[W]>(
      {
        source: listWatch<WatchedObject[W]>(this.#client, this.#collections[what], {}, (verb, fn) =>
          this.#call(verb, what, fn),
        ),
        onSync: handlers.onSync,
        onEvent: handlers.onEvent,
        log: this.#log.child({ watch: what }),
        what,
        ...(handlers.transform !== undefined ? { transform: handlers.transform } : {}),
      },
      signal,
    );
  }

  /** Creates a Device (its status is ignored: see patchDeviceStatus). */
  createDevice(device: Device, signal: AbortSignal): Promise<Device> {
    const ns = device.metadata.namespace ?? 'default';
    return this.#call('create', 'devices', () =>
      this.#client.request<Device>('POST', custom('devices', { namespace: ns }), {
        body: { ...device, status: undefined },
        signal,
      }),
    );
  }

  /** Replaces a Device's metadata and spec; `device.metadata.resourceVersion` is the precondition. */
  replaceDevice(device: Device, signal: AbortSignal): Promise<Device> {
    const ns = device.metadata.namespace ?? 'default';
    return this.#call('update', 'devices', () =>
      this.#client.request<Device>(
        'PUT',
        custom('devices', { namespace: ns, name: device.metadata.name }),
        { body: device, signal },
      ),
    );
  }

  /**
   * Merge-patches status.nodes and status.topics (other status fields, such as
   * the device plugins' usage, are left alone), if still at `resourceVersion`.
   */
  patchDeviceStatus(
    namespace: string,
    name: string,
    resourceVersion: string,
    status: Pick<NonNullable<Device['status']>, 'nodes' | 'topics'>,
    signal: AbortSignal,
  ): Promise<Device> {
    return this.#call('patch', 'devices/status', () =>
      this.#client.request<Device>(
        'PATCH',
        custom('devices', { namespace, name, subresource: 'status' }),
        {
          body: { metadata: { resourceVersion }, status },
          contentType: MERGE_PATCH,
          signal,
        },
      ),
    );
  }

  /** Deletes a Device if it is still the copy at `resourceVersion`. */
  async deleteDevice(
    namespace: string,
    name: string,
    resourceVersion: string,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#call('delete', 'devices', () =>
      this.#client.request('DELETE', custom('devices', { namespace, name }), {
        body: { preconditions: { resourceVersion } },
        signal,
      }),
    );
  }

  /** Merge-patches a Discovery's status (conditions are replaced whole), if still at `resourceVersion`. */
  patchDiscoveryStatus(
    namespace: string,
    name: string,
    resourceVersion: string,
    status: DiscoveryStatus,
    signal: AbortSignal,
  ): Promise<Discovery> {
    return this.#call('patch', 'discoveries/status', () =>
      this.#client.request<Discovery>(
        'PATCH',
        custom('discoveries', { namespace, name, subresource: 'status' }),
        { body: { metadata: { resourceVersion }, status }, contentType: MERGE_PATCH, signal },
      ),
    );
  }

  /** Deletes a DeviceSlice if it is still the one with `uid`. */
  async deleteSlice(
    namespace: string,
    name: string,
    uid: string,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#call('delete', 'deviceslices', () =>
      this.#client.request('DELETE', custom('deviceslices', { namespace, name }), {
        body: { preconditions: { uid } },
        signal,
      }),
    );
  }

  async #call<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      this.#onRequest(verb, resource, '2xx');
      return result;
    } catch (err) {
      this.#onRequest(verb, resource, String(statusOf(err) ?? 'error'));
      throw err;
    }
  }
}
