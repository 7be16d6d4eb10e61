import type { Logger } from 'pino';
import {
  API_VERSION,
  GROUP,
  VERSION,
  type Device,
  type DeviceNodeStatus,
  type Discovery,
  type DiscoveryStatus,
} from '../../api/types.ts';
import { canonicalJson } from '../../util/canonical-json.ts';
import { apiStatus, classifyApiError } from './api-errors.ts';
import type { ClusterConnection } from './client/connection.ts';
import { runInformer } from './client/informer.ts';
import { KubeClient, type QueryParams } from './client/kube-client.ts';
import { listWatch, type KubeList } from './client/list-watch.ts';
import { resourcePath, type ResourceRef } from './client/paths.ts';
import type { DeviceView, Query, Registry, TokenReviewStatus, ValueRef } from '../registry.ts';
import { reviewToken } from './token-review.ts';

const DISCOVERIES = 'discoveries';
const DEVICES = 'devices';
const APPLY_PATCH = 'application/apply-patch+yaml';

export interface KubernetesRegistryOptions {
  /** The API server and credentials (a resolved kubeconfig or the in-cluster config). */
  connection: ClusterConnection;
  /** Server-side apply field manager: the node name for an agent. */
  fieldManager: string;
  log: Logger;
  /** Called after every API request, for metrics. */
  onRequest?: (verb: string, resource: string, code: string) => void;
}

/** An edgebridge.io custom resource. */
function custom(plural: string, more: Omit<ResourceRef, 'version' | 'plural'> = {}): string {
  return resourcePath({ group: GROUP, version: VERSION, plural, ...more });
}

/** Discoveries and Devices as custom resources in a Kubernetes cluster. */
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

  async updateDiscoveryStatus(
    namespace: string,
    name: string,
    status: DiscoveryStatus,
  ): Promise<void> {
    // status.devices belongs to the controller (the fold of every node's
    // slices); a node applying its own partial count would be wrong.
    const own: DiscoveryStatus = { ...status };
    delete own.devices;
    await this.#call('apply', `${DISCOVERIES}/status`, () =>
      this.#apply(
        custom(DISCOVERIES, { namespace, name, subresource: 'status' }),
        {
          apiVersion: API_VERSION,
          kind: 'Discovery',
          metadata: { name, namespace },
          status: own,
        },
        this.#manager,
      ),
    );
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
    onLabels: (labels: Record<string, string>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const stop = AbortSignal.any([signal, this.#closed.signal]);
    if (stop.aborted) return;
    await runInformer<{ metadata?: { name?: string; labels?: Record<string, string> } }>(
      {
        source: listWatch(
          this.#client,
          resourcePath({ version: 'v1', plural: 'nodes' }),
          { fieldSelector: `metadata.name=${node}` },
          (verb, fn) => this.#call(verb, 'nodes', fn),
        ),
        onSync: (items) => onLabels(items[0]?.metadata?.labels ?? {}),
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

  async applyDevice(view: DeviceView, hint?: { known: boolean }): Promise<void> {
    const { namespace, name } = view;
    try {
      // Most applies are a node joining a Device another node made (or a
      // restart): applying the node's status entry first is then the only
      // write. The object itself is applied when it is missing or different.
      // A local device this node has never seen stored is certainly missing
      // (its name is this node's alone): asking first would be a wasted 404.
      let current: Device | undefined;
      const certainlyNew = hint?.known === false && !view.spec.shared;
      try {
        if (!certainlyNew) {
          current = await this.#applyStatus(namespace, name, view.node.name, [view.node]);
        }
      } catch (err) {
        if (apiStatus(err) !== 404) throw err;
      }
      if (current !== undefined && objectMatches(current, view)) return;
      await this.#call('apply', DEVICES, () =>
        this.#apply(
          custom(DEVICES, { namespace, name }),
          {
            apiVersion: API_VERSION,
            kind: 'Device',
            metadata: {
              name,
              namespace,
              labels: view.labels,
              ownerReferences: [
                {
                  apiVersion: API_VERSION,
                  kind: 'Discovery',
                  name: view.discovery.name,
                  uid: view.discovery.uid,
                },
              ],
            },
            spec: view.spec,
          },
          view.node.name,
        ),
      );
      if (current === undefined)
        await this.#applyStatus(namespace, name, view.node.name, [view.node]);
    } catch (err) {
      throw classifyApiError(err, `apply device ${namespace}/${name}`);
    }
  }

  async removeDeviceNode(namespace: string, name: string, node: string): Promise<void> {
    let remaining: Device;
    try {
      // Applying no entries as this node's field manager drops only the entry it owns.
      remaining = await this.#applyStatus(namespace, name, node, []);
    } catch (err) {
      if (apiStatus(err) === 404) return;
      throw classifyApiError(err, `remove node ${node} from device ${namespace}/${name}`);
    }
    if ((remaining.status?.nodes ?? []).length > 0) return;
    try {
      // The precondition keeps a device that another node has just joined.
      await this.#call('delete', DEVICES, () =>
        this.#client.request('DELETE', custom(DEVICES, { namespace, name }), {
          body: { preconditions: { resourceVersion: remaining.metadata.resourceVersion ?? '' } },
        }),
      );
    } catch (err) {
      const status = apiStatus(err);
      if (status === 404 || status === 409) return;
      throw classifyApiError(err, `delete device ${namespace}/${name}`);
    }
  }

  /** Server-side applies `nodes` as `node`'s entries of status.nodes; returns the Device. */
  async #applyStatus(
    namespace: string,
    name: string,
    node: string,
    nodes: DeviceNodeStatus[],
  ): Promise<Device> {
    return this.#call('apply', `${DEVICES}/status`, () =>
      this.#apply<Device>(
        custom(DEVICES, { namespace, name, subresource: 'status' }),
        {
          apiVersion: API_VERSION,
          kind: 'Device',
          metadata: { name, namespace },
          status: { nodes },
        },
        node,
      ),
    );
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

  /** Server-side apply of `body` at `path` as `fieldManager`, taking over conflicting fields. */
  #apply<T>(path: string, body: object, fieldManager: string): Promise<T> {
    return this.#client.request<T>('PATCH', path, {
      query: { fieldManager, force: true },
      body,
      contentType: APPLY_PATCH,
    });
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

/** True if the Device already has the view's labels, owner and spec (other labels may exist). */
function objectMatches(device: Device, view: DeviceView): boolean {
  const labels = device.metadata.labels ?? {};
  if (Object.entries(view.labels).some(([k, v]) => labels[k] !== v)) return false;
  if (!(device.metadata.ownerReferences ?? []).some((o) => o.uid === view.discovery.uid))
    return false;
  return canonicalJson(device.spec) === canonicalJson(view.spec);
}
