// Where a leader elector reads and writes its Lease: the Kubernetes API in the
// controller, an in-memory one in unit tests. Errors are the slim client's
// (KubeApiError with a status), so that the elector classifies both alike.
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';
import { LEASE_GROUP, LEASE_VERSION, type Lease, type LeaseSpec } from './lease-record.ts';

/** Per-request options: the elector bounds every request by its renew deadline. */
export interface LeaseRequest {
  signal: AbortSignal;
  timeoutMs: number;
}

/**
 * contract: one Lease, read and written with optimistic concurrency. `update`
 * fails with KubeApiError 409 when the Lease changed since `lease` was read,
 * `create` with 409 when one exists; 403 means no RBAC rights on Leases.
 */
export interface LeaseStore {
  /** "namespace/name", for messages. */
  readonly description: string;
  /** The Lease, or undefined when there is none. */
  get(req: LeaseRequest): Promise<Lease | undefined>;
  create(spec: LeaseSpec, req: LeaseRequest): Promise<Lease>;
  /** Replaces the spec of `lease` as read (its resourceVersion is the precondition). */
  update(lease: Lease, spec: LeaseSpec, req: LeaseRequest): Promise<Lease>;
}

/** The Lease `namespace/name` through the slim Kubernetes client. */
export class KubeLeaseStore implements LeaseStore {
  readonly description: string;
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #name: string;

  constructor(client: KubeClient, namespace: string, name: string) {
    this.#client = client;
    this.#namespace = namespace;
    this.#name = name;
    this.description = `${namespace}/${name}`;
  }

  #path(withName: boolean): string {
    return resourcePath({
      group: LEASE_GROUP,
      version: LEASE_VERSION,
      plural: 'leases',
      namespace: this.#namespace,
      ...(withName ? { name: this.#name } : {}),
    });
  }

  async get(req: LeaseRequest): Promise<Lease | undefined> {
    try {
      return await this.#client.request<Lease>('GET', this.#path(true), req);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  create(spec: LeaseSpec, req: LeaseRequest): Promise<Lease> {
    const body: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.#name, namespace: this.#namespace },
      spec,
    };
    return this.#client.request<Lease>('POST', this.#path(false), { ...req, body });
  }

  update(lease: Lease, spec: LeaseSpec, req: LeaseRequest): Promise<Lease> {
    // PUT with the resourceVersion read: the server refuses it (409) if anyone wrote in between.
    const body: Lease = { ...lease, spec };
    return this.#client.request<Lease>('PUT', this.#path(true), { ...req, body });
  }
}
