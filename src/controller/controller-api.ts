// The controller's Kubernetes requests over the slim client: list-watch of its
// four resources, and its few writes. Every update carries the resource
// version it was computed from, so a write based on a stale copy fails with
// 409 and the key is reconciled again from the newer one. Writes share an
// adaptive in-flight limit: a burst of new Devices uses the API server fully,
// and backs off when it answers 429 or 5xx, times out, or slows down a lot.
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
import { KubeApiError, KubeTransportError } from '../registry/kubernetes/client/errors.ts';
import { AdaptiveLimit, type Outcome } from '../util/adaptive-limit.ts';
import type { NodeObject } from './node-readiness.ts';
import { WriteQuiet } from './write-quiet.ts';

const MERGE_PATCH = 'application/merge-patch+json';
/** Writes in flight at most by default; the client needs this many connections, and a few for watches. */
export const DEFAULT_MAX_WRITES_IN_FLIGHT = 64;
/** In flight at the start: the API server's answers then raise or halve it. */
const INITIAL_WRITES_IN_FLIGHT = 16;
/**
 * A write slower than this is queueing at the API server (the agent's limit
 * takes 50 ms: a fleet of agents must back off sooner than the one controller,
 * whose writes are what the fleet waits for).
 */
const SLOW_WRITE_MS = 1000;

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
  /** Writes in flight at most (default 64); the limit adapts below it. */
  maxWritesInFlight?: number;
}

/** Whether a failed write says the API server is overloaded (so the controller should slow down). */
export function outcomeOf(err: unknown): Outcome {
  const status = statusOf(err);
  if (status === 429 || (status !== undefined && status >= 500)) return 'overloaded';
  return err instanceof KubeTransportError ? 'overloaded' : 'failed';
}

/** contract: what the controller reads and writes in the API server; nothing else talks to it. */
export class ControllerApi {
  readonly #client: KubeClient;
  readonly #log: Logger;
  readonly #onRequest: (verb: string, resource: string, code: string) => void;
  readonly #collections: Record<Watched, string>;
  readonly #limit: AdaptiveLimit;
  readonly #quiet = new WriteQuiet();

  constructor(opts: ControllerApiOptions) {
    this.#client = opts.client;
    this.#collections = collections(opts.namespace);
    this.#log = opts.log;
    this.#onRequest = opts.onRequest ?? (() => undefined);
    const max = opts.maxWritesInFlight ?? DEFAULT_MAX_WRITES_IN_FLIGHT;
    this.#limit = new AdaptiveLimit({
      initial: Math.min(max, INITIAL_WRITES_IN_FLIGHT),
      max,
      latencyFloorMs: SLOW_WRITE_MS,
    });
  }

  /** Writes allowed in flight now. */
  get writeLimit(): number {
    return this.#limit.limit;
  }

  /** Resolves once the controller's writes have paused (see WriteQuiet), or after `maxWaitMs`: when lesser writes (Events) may go. */
  whenQuiet(signal: AbortSignal, maxWaitMs: number): Promise<void> {
    return this.#quiet.whenQuiet(signal, maxWaitMs);
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
    return this.#write('create', 'devices', () =>
      this.#client.request<Device>('POST', custom('devices', { namespace: ns }), {
        body: { ...device, status: undefined },
        signal,
      }),
    );
  }

  /** Replaces a Device's metadata and spec; `device.metadata.resourceVersion` is the precondition. */
  replaceDevice(device: Device, signal: AbortSignal): Promise<Device> {
    const ns = device.metadata.namespace ?? 'default';
    return this.#write('update', 'devices', () =>
      this.#client.request<Device>(
        'PUT',
        custom('devices', { namespace: ns, name: device.metadata.name }),
        { body: device, signal },
      ),
    );
  }

  /**
   * Merge-patches status.nodes and status.topics (other status fields, such as
   * the device plugins' usage, are left alone), or releases usage slots of
   * nodes that are gone, if still at `resourceVersion`.
   */
  patchDeviceStatus(
    namespace: string,
    name: string,
    resourceVersion: string,
    status:
      | Pick<NonNullable<Device['status']>, 'nodes' | 'topics'>
      | { usage: Record<string, string | null> }, // null releases a slot
    signal: AbortSignal,
  ): Promise<Device> {
    return this.#write('patch', 'devices/status', () =>
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
    await this.#write('delete', 'devices', () =>
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
    return this.#write('patch', 'discoveries/status', () =>
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
    await this.#write('delete', 'deviceslices', () =>
      this.#client.request('DELETE', custom('deviceslices', { namespace, name }), {
        body: { preconditions: { uid } },
        signal,
      }),
    );
  }

  /** A write: under the adaptive limit, and counted as under way for whenQuiet(). */
  #write<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T> {
    const end = this.#quiet.begin();
    return this.#limit.run(() => this.#call(verb, resource, fn), outcomeOf).finally(end);
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
