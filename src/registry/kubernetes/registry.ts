import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  makeInformer,
  setHeaderOptions,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
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
import { Backoff, sleep } from '../../util/backoff.ts';
import { canonicalJson } from '../../util/canonical-json.ts';
import { apiStatus, classifyApiError } from './api-errors.ts';
import type { DeviceView, Query, Registry, TokenReviewStatus, ValueRef } from '../registry.ts';
import { reviewToken } from './token-review.ts';

const DISCOVERIES = 'discoveries';
const DEVICES = 'devices';

export interface KubernetesRegistryOptions {
  kubeConfig: KubeConfig;
  /** Server-side apply field manager: the node name for an agent. */
  fieldManager: string;
  log: Logger;
  /** Called after every API request, for metrics. */
  onRequest?: (verb: string, resource: string, code: string) => void;
}

const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

/** Discoveries and Devices as custom resources in a Kubernetes cluster. */
export class KubernetesRegistry implements Registry {
  readonly kind = 'kubernetes';
  readonly #kc: KubeConfig;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #manager: string;
  readonly #log: Logger;
  readonly #onRequest: (verb: string, resource: string, code: string) => void;
  readonly #closed = new AbortController();

  constructor(opts: KubernetesRegistryOptions) {
    this.#kc = opts.kubeConfig;
    this.#custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#core = opts.kubeConfig.makeApiClient(CoreV1Api);
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
    const informer = makeInformer<KubernetesObject>(
      this.#kc,
      `/apis/${GROUP}/${VERSION}/${DISCOVERIES}`,
      () =>
        this.#call('list', DISCOVERIES, () =>
          this.#custom.listClusterCustomObject({
            group: GROUP,
            version: VERSION,
            plural: DISCOVERIES,
          }),
        ) as Promise<KubernetesListObject<KubernetesObject>>,
    );
    const backoff = new Backoff();
    const emit = (): void => {
      backoff.reset();
      onChange(informer.list() as unknown as Discovery[]);
    };
    let failed: (err: unknown) => void = () => undefined;
    informer.on('add', emit);
    informer.on('update', emit);
    informer.on('delete', emit);
    // The informer stops on any error other than 410 Gone (which it relists on
    // by itself); restart it after a capped, jittered delay.
    informer.on('error', (err: unknown) => failed(err));
    try {
      for (;;) {
        const error = new Promise<unknown>((resolve) => (failed = resolve));
        await informer.start();
        // A list with no Discoveries fires no add events; report the empty set too.
        if (informer.list().length === 0) onChange([]);
        const aborted = new Promise<undefined>((resolve) =>
          stop.addEventListener('abort', () => resolve(undefined), { once: true }),
        );
        const err = await Promise.race([error, aborted]);
        if (stop.aborted) return;
        const delay = backoff.nextDelay();
        this.#log.warn(
          { err: (err as Error | undefined)?.message, retryInMs: delay },
          'discovery watch failed; restarting',
        );
        await informer.stop();
        await sleep(delay, stop).catch(() => undefined);
        if (stop.aborted) return;
      }
    } finally {
      await informer.stop();
    }
  }

  async listDiscoveries(query: Query): Promise<Discovery[]> {
    return this.#list<Discovery>(DISCOVERIES, query);
  }

  async updateDiscoveryStatus(
    namespace: string,
    name: string,
    status: DiscoveryStatus,
  ): Promise<void> {
    await this.#call('apply', `${DISCOVERIES}/status`, () =>
      this.#custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: DISCOVERIES,
          name,
          body: {
            apiVersion: API_VERSION,
            kind: 'Discovery',
            metadata: { name, namespace },
            status,
          },
          fieldManager: this.#manager,
          force: true,
        },
        apply,
      ),
    );
  }

  async readValue(ref: ValueRef): Promise<string | undefined> {
    try {
      if (ref.kind === 'Secret') {
        const secret = await this.#call('get', 'secrets', () =>
          this.#core.readNamespacedSecret({ name: ref.name, namespace: ref.namespace }),
        );
        const b64 = secret.data?.[ref.key];
        return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
      }
      const cm = await this.#call('get', 'configmaps', () =>
        this.#core.readNamespacedConfigMap({ name: ref.name, namespace: ref.namespace }),
      );
      return cm.data?.[ref.key];
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw classifyApiError(err, `read ${ref.kind} ${ref.namespace}/${ref.name}`);
    }
  }

  async nodeLabels(node: string): Promise<Record<string, string>> {
    try {
      const n = await this.#call('get', 'nodes', () => this.#core.readNode({ name: node }));
      return n.metadata?.labels ?? {};
    } catch (err) {
      if (apiStatus(err) === 404) return {};
      throw classifyApiError(err, `read node ${node}`);
    }
  }

  async applyDevice(view: DeviceView): Promise<void> {
    const { namespace, name } = view;
    try {
      // Most applies are a node joining a Device another node made (or a
      // restart): applying the node's status entry first is then the only
      // write. The object itself is applied when it is missing or different.
      let current: Device | undefined;
      try {
        current = await this.#applyStatus(namespace, name, view.node.name, [view.node]);
      } catch (err) {
        if (apiStatus(err) !== 404) throw err;
      }
      if (current !== undefined && objectMatches(current, view)) return;
      await this.#call('apply', DEVICES, () =>
        this.#custom.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: VERSION,
            namespace,
            plural: DEVICES,
            name,
            body: {
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
            fieldManager: view.node.name,
            force: true,
          },
          apply,
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
        this.#custom.deleteNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: DEVICES,
          name,
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
    return (await this.#call('apply', `${DEVICES}/status`, () =>
      this.#custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: DEVICES,
          name,
          body: {
            apiVersion: API_VERSION,
            kind: 'Device',
            metadata: { name, namespace },
            status: { nodes },
          },
          fieldManager: node,
          force: true,
        },
        apply,
      ),
    )) as Device;
  }

  async listDevices(query: Query): Promise<Device[]> {
    return this.#list<Device>(DEVICES, query);
  }

  reviewToken(token: string, audiences: string[]): Promise<TokenReviewStatus> {
    return this.#call('create', 'tokenreviews', () => reviewToken(this.#kc, token, audiences));
  }

  async close(): Promise<void> {
    this.#closed.abort(new Error('registry closed'));
    await Promise.resolve();
  }

  async #list<T>(plural: string, query: Query): Promise<T[]> {
    const selectors = {
      ...(query.labelSelector !== undefined ? { labelSelector: query.labelSelector } : {}),
      ...(query.fieldSelector !== undefined ? { fieldSelector: query.fieldSelector } : {}),
    };
    try {
      const list = (await this.#call('list', plural, () =>
        query.namespace !== undefined
          ? this.#custom.listNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              plural,
              namespace: query.namespace,
              ...selectors,
            })
          : this.#custom.listClusterCustomObject({
              group: GROUP,
              version: VERSION,
              plural,
              ...selectors,
            }),
      )) as { items?: T[] };
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

/** True if the Device already has the view's labels, owner and spec (other labels may exist). */
function objectMatches(device: Device, view: DeviceView): boolean {
  const labels = device.metadata.labels ?? {};
  if (Object.entries(view.labels).some(([k, v]) => labels[k] !== v)) return false;
  if (!(device.metadata.ownerReferences ?? []).some((o) => o.uid === view.discovery.uid))
    return false;
  return canonicalJson(device.spec) === canonicalJson(view.spec);
}
