import type { Logger } from 'pino';
import {
  GROUP,
  LABEL_NODE,
  VERSION,
  type Device,
  type DeviceSlice,
  type Discovery,
} from '../../api/types.ts';
import { apiStatus, classifyApiError } from './api-errors.ts';
import type { ClusterConnection } from './client/connection.ts';
import { runInformer } from './client/informer.ts';
import { KubeClient, type QueryParams } from './client/kube-client.ts';
import { listWatch, type KubeList } from './client/list-watch.ts';
import { resourcePath, type ResourceRef } from './client/paths.ts';
import type { Query, Registry, TokenReviewStatus, ValueRef } from '../registry.ts';
import { reviewToken } from './token-review.ts';

const DISCOVERIES = 'discoveries';
const DEVICES = 'devices';
const SLICES = 'deviceslices';

export interface KubernetesRegistryOptions {
  /** The API server and credentials (a resolved kubeconfig or the in-cluster config). */
  connection: ClusterConnection;
  /** Field manager of writes: the node name for an agent. */
  fieldManager: string;
  log: Logger;
  /** Called after every API request, for metrics. */
  onRequest?: (verb: string, resource: string, code: string) => void;
}

/** An edgebridge.io custom resource. */
function custom(plural: string, more: Omit<ResourceRef, 'version' | 'plural'> = {}): string {
  return resourcePath({ group: GROUP, version: VERSION, plural, ...more });
}

/** Discoveries, DeviceSlices and Devices as custom resources in a Kubernetes cluster. */
export class KubernetesRegistry implements Registry {
  readonly kind = 'kubernetes';
  readonly #client: KubeClient;
  readonly #manager: string;
  readonly #log: Logger;
  readonly #onRequest: (verb: string, resource: string, code: string) => void;
  readonly #closed = new AbortController();

  constructor(opts: KubernetesRegistryOptions) {
    this.#client = new KubeClient(opts.connection);
    this.#manager = opts.fieldManager;
    this.#log = opts.log;
    this.#onRequest = opts.onRequest ?? (() => undefined);
  }

  async watchDiscoveries(
    onChange: (discoveries: Discovery[]) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const stop = AbortSignal.any([signal, this.#closed.signal]);
    if (stop.aborted) return;
    await runInformer<Discovery>(
      {
        source: listWatch<Discovery>(this.#client, custom(DISCOVERIES), {}, (verb, fn) =>
          this.#call(verb, DISCOVERIES, fn),
        ),
        onSync: onChange,
        log: this.#log,
        what: DISCOVERIES,
      },
      stop,
    );
  }

  async listDiscoveries(query: Query): Promise<Discovery[]> {
    return this.#list<Discovery>(DISCOVERIES, query);
  }

  async readValue(ref: ValueRef): Promise<string | undefined> {
    try {
      if (ref.kind === 'Secret') {
        const secret = await this.#call('get', 'secrets', () =>
          this.#client.request<{ data?: Record<string, string> }>(
            'GET',
            resourcePath({
              version: 'v1',
              plural: 'secrets',
              namespace: ref.namespace,
              name: ref.name,
            }),
          ),
        );
        const b64 = secret.data?.[ref.key];
        return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
      }
      const cm = await this.#call('get', 'configmaps', () =>
        this.#client.request<{ data?: Record<string, string> }>(
          'GET',
          resourcePath({
            version: 'v1',
            plural: 'configmaps',
            namespace: ref.namespace,
            name: ref.name,
          }),
        ),
      );
      return cm.data?.[ref.key];
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw classifyApiError(err, `read ${ref.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  async watchNodeLabels(
    node: string,
    onLabels: (labels: Record<string, string>, uid: string | undefined) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const stop = AbortSignal.any([signal, this.#closed.signal]);
    if (stop.aborted) return;
    await runInformer<{
      metadata?: { name?: string; uid?: string; labels?: Record<string, string> };
    }>(
      {
        source: listWatch(
          this.#client,
          resourcePath({ version: 'v1', plural: 'nodes' }),
          { fieldSelector: `metadata.name=${node}` },
          (verb, fn) => this.#call(verb, 'nodes', fn),
        ),
        onSync: (items) => onLabels(items[0]?.metadata?.labels ?? {}, items[0]?.metadata?.uid),
        log: this.#log,
        what: 'nodes',
      },
      stop,
    );
  }

  async nodeLabels(node: string): Promise<Record<string, string>> {
    try {
      const n = await this.#call('get', 'nodes', () =>
        this.#client.request<{ metadata?: { labels?: Record<string, string> } }>(
          'GET',
          resourcePath({ version: 'v1', plural: 'nodes', name: node }),
        ),
      );
      return n.metadata?.labels ?? {};
    } catch (err) {
      if (apiStatus(err) === 404) return {};
      throw classifyApiError(err, `read node ${node}`);
    }
  }

  async watchNodeSlices(
    node: string,
    onChange: (slices: DeviceSlice[]) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const stop = AbortSignal.any([signal, this.#closed.signal]);
    if (stop.aborted) return;
    await runInformer<DeviceSlice>(
      {
        source: listWatch<DeviceSlice>(
          this.#client,
          custom(SLICES),
          { labelSelector: `${LABEL_NODE}=${node}` },
          (verb, fn) => this.#call(verb, SLICES, fn),
        ),
        onSync: onChange,
        log: this.#log,
        what: SLICES,
      },
      stop,
    );
  }

  async putSlice(slice: DeviceSlice): Promise<DeviceSlice> {
    const namespace = slice.metadata.namespace ?? 'default';
    const { name } = slice.metadata;
    const query = { fieldManager: this.#manager };
    try {
      // A replace (not an apply): it also takes out what a hand edit added.
      if (slice.metadata.resourceVersion !== undefined)
        return await this.#call('update', SLICES, () =>
          this.#client.request<DeviceSlice>('PUT', custom(SLICES, { namespace, name }), {
            query,
            body: slice,
          }),
        );
      return await this.#call('create', SLICES, () =>
        this.#client.request<DeviceSlice>('POST', custom(SLICES, { namespace }), {
          query,
          body: slice,
        }),
      );
    } catch (err) {
      throw classifyApiError(err, `write deviceslice ${namespace}/${name}`);
    }
  }

  async deleteSlice(namespace: string, name: string): Promise<void> {
    try {
      await this.#call('delete', SLICES, () =>
        this.#client.request('DELETE', custom(SLICES, { namespace, name })),
      );
    } catch (err) {
      if (apiStatus(err) === 404) return;
      throw classifyApiError(err, `delete deviceslice ${namespace}/${name}`);
    }
  }

  async listDevices(query: Query): Promise<Device[]> {
    return this.#list<Device>(DEVICES, query);
  }

  reviewToken(token: string, audiences: string[]): Promise<TokenReviewStatus> {
    return this.#call('create', 'tokenreviews', () => reviewToken(this.#client, token, audiences));
  }

  async close(): Promise<void> {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort(new Error('registry closed'));
    this.#client.close();
    await Promise.resolve();
  }

  async #list<T>(plural: string, query: Query): Promise<T[]> {
    const params: QueryParams = {
      labelSelector: query.labelSelector,
      fieldSelector: query.fieldSelector,
    };
    const path =
      query.namespace !== undefined
        ? custom(plural, { namespace: query.namespace })
        : custom(plural);
    try {
      const list = await this.#call('list', plural, () =>
        this.#client.request<KubeList<T>>('GET', path, { query: params }),
      );
      return list.items ?? [];
    } catch (err) {
      throw classifyApiError(err, `list ${plural}`);
    }
  }

  async #call<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      this.#onRequest(verb, resource, '2xx');
      return result;
    } catch (err) {
      this.#onRequest(verb, resource, String(apiStatus(err) ?? 'error'));
      throw err;
    }
  }
}
