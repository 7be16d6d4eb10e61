// Keeps the node's ResourceSlices equal to the wanted pool: one pass after
// changes settle, writing only when the pool's content changed, and then every
// slice with the next generation (the scheduler uses only a pool's newest
// generation, and only once all its slices carry it).
import type { Logger } from 'pino';
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';
import { Backoff, sleep } from '../util/backoff.ts';
import { canonicalJson } from '../util/canonical-json.ts';
import { DRIVER, RESOURCE_API_GROUP, RESOURCE_API_VERSION } from './driver.ts';
import type { WantedSlice } from './resource-slices.ts';

/** Changes closer together than this become one pass. */
const DEFAULT_COALESCE_MS = 200;
/** Label on the slices, for kubectl and for listing them. */
export const LABEL_NODE = 'edgebridge.io/node';

interface ResourceSlice {
  metadata: {
    name: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[];
  };
  spec: {
    driver: string;
    nodeName: string;
    pool: { name: string; generation: number; resourceSliceCount: number };
    devices?: unknown[];
  };
}

export interface SlicePublisherOptions {
  client: KubeClient;
  node: string;
  log: Logger;
  /** Changes closer together than this become one pass (default 200 ms). */
  coalesceMs?: number;
}

const slicesPath = (name?: string): string =>
  resourcePath({
    group: RESOURCE_API_GROUP,
    version: RESOURCE_API_VERSION,
    plural: 'resourceslices',
    ...(name !== undefined ? { name } : {}),
  });

/** Publishes one node's pool; `set()` gives the wanted slices, `close()` stops (slices stay). */
export class SlicePublisher {
  readonly #opts: SlicePublisherOptions;
  readonly #stop = new AbortController();
  readonly #backoff = new Backoff();
  #wanted: WantedSlice[] | undefined;
  #dirty = false;
  #wake: (() => void) | undefined;
  /** Callers of settled() waiting for the loop to have nothing left to write. */
  #idleWaiters: (() => void)[] = [];
  #loop: Promise<void> | undefined;
  /** What the API server holds, by slice name; undefined until listed (or after a conflict). */
  #known: Map<string, ResourceSlice> | undefined;
  #owner: { uid: string } | null | undefined;
  /** Passes that wrote something, for tests and the log. */
  #writes = 0;

  constructor(opts: SlicePublisherOptions) {
    this.#opts = opts;
  }

  /** Number of slice creates, updates and deletes so far. */
  get writes(): number {
    return this.#writes;
  }

  /** The pool as it should be now; the latest call wins. */
  set(slices: WantedSlice[]): void {
    if (this.#stop.signal.aborted) return;
    this.#wanted = slices;
    this.#dirty = true;
    this.#wake?.();
    this.#loop ??= this.#run();
  }

  /** Resolves once every set() so far is written (or the publisher is closed). */
  settled(): Promise<void> {
    if ((!this.#dirty && this.#wake !== undefined) || this.#loop === undefined)
      return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops after the write under way; the slices stay (they go with the Node). Idempotent. */
  async close(): Promise<void> {
    this.#stop.abort(new Error('slice publisher closed'));
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    const coalesce = this.#opts.coalesceMs ?? DEFAULT_COALESCE_MS;
    while (!signal.aborted) {
      if (!this.#dirty) {
        for (const resolve of this.#idleWaiters.splice(0)) resolve();
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      try {
        await sleep(coalesce, signal);
        this.#dirty = false;
        await this.#sync(this.#wanted ?? [], signal);
        this.#backoff.reset();
      } catch (err) {
        if (signal.aborted) break;
        this.#dirty = true;
        // A conflict or a lost answer: read the pool again before the next pass.
        this.#known = undefined;
        const delay = this.#backoff.nextDelay();
        this.#opts.log.warn(
          { err: (err as Error).message, retryInMs: delay },
          'ResourceSlices not written; retrying',
        );
        await sleep(delay, signal).catch(() => undefined);
      }
    }
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  async #sync(wanted: WantedSlice[], signal: AbortSignal): Promise<void> {
    const { client, node, log } = this.#opts;
    this.#known ??= await this.#list(signal);
    this.#owner ??= await this.#nodeOwner(signal);
    const known = this.#known;
    const generations = [...known.values()].map((s) => s.spec.pool.generation);
    const current = Math.max(0, ...generations);
    if (this.#same(wanted, known, current)) return;
    const generation = current + 1;
    let writes = 0;
    for (const w of wanted) {
      const before = known.get(w.name);
      const body = this.#object(w, generation, wanted.length, before?.metadata.resourceVersion);
      const written =
        before === undefined
          ? await client.request<ResourceSlice>('POST', slicesPath(), { body, signal })
          : await client.request<ResourceSlice>('PUT', slicesPath(w.name), { body, signal });
      known.set(w.name, written);
      writes++;
    }
    const names = new Set(wanted.map((w) => w.name));
    for (const name of [...known.keys()]) {
      if (names.has(name)) continue;
      await client.request('DELETE', slicesPath(name), { signal }).catch((err: unknown) => {
        if (!(err instanceof KubeApiError && err.status === 404)) throw err;
      });
      known.delete(name);
      writes++;
    }
    this.#writes += writes;
    const devices = wanted.reduce((n, w) => n + w.devices.length, 0);
    log.info(
      { node, generation, slices: wanted.length, devices, writes },
      'ResourceSlices published',
    );
  }

  /** Whether the server's slices already say what `wanted` says, all of one generation. */
  #same(wanted: WantedSlice[], known: Map<string, ResourceSlice>, generation: number): boolean {
    if (wanted.length !== known.size) return false;
    return wanted.every((w) => {
      const k = known.get(w.name);
      return (
        k !== undefined &&
        k.spec.pool.generation === generation &&
        k.spec.pool.resourceSliceCount === wanted.length &&
        canonicalJson(k.spec.devices ?? []) === canonicalJson(w.devices)
      );
    });
  }

  #object(w: WantedSlice, generation: number, count: number, resourceVersion?: string): object {
    const { node } = this.#opts;
    const owner = this.#owner;
    return {
      apiVersion: `${RESOURCE_API_GROUP}/${RESOURCE_API_VERSION}`,
      kind: 'ResourceSlice',
      metadata: {
        name: w.name,
        labels: { [LABEL_NODE]: node },
        ...(resourceVersion !== undefined ? { resourceVersion } : {}),
        // Owned by the Node: deleting it removes its slices (the garbage collector's job).
        ...(owner !== null && owner !== undefined
          ? {
              ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node, uid: owner.uid }],
            }
          : {}),
      },
      spec: {
        driver: DRIVER,
        nodeName: node,
        pool: { name: node, generation, resourceSliceCount: count },
        devices: w.devices,
      },
    };
  }

  async #list(signal: AbortSignal): Promise<Map<string, ResourceSlice>> {
    const { client, node } = this.#opts;
    const list = await client.request<{ items?: ResourceSlice[] }>('GET', slicesPath(), {
      query: { fieldSelector: `spec.nodeName=${node},spec.driver=${DRIVER}` },
      signal,
    });
    return new Map((list.items ?? []).map((s) => [s.metadata.name, s]));
  }

  /** The Node's uid for the owner reference; null where there is no Node object. */
  async #nodeOwner(signal: AbortSignal): Promise<{ uid: string } | null> {
    const { client, node, log } = this.#opts;
    try {
      const n = await client.request<{ metadata?: { uid?: string } }>(
        'GET',
        resourcePath({ version: 'v1', plural: 'nodes', name: node }),
        { signal },
      );
      return n.metadata?.uid !== undefined ? { uid: n.metadata.uid } : null;
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 404)) throw err;
      log.warn({ node }, 'no Node object: ResourceSlices published without an owner');
      return null;
    }
  }
}
