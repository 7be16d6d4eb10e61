// What NodePrepareResources does for one claim: read the ResourceClaim from
// the API server (the kubelet's request carries only its identity), take the
// devices allocated from this node's pool, and write their CDI spec.
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';
import {
  cdiDeviceId,
  cdiSpecFor,
  checkClaimUid,
  removeCdiSpec,
  writeCdiSpec,
  type CdiContext,
  type ClaimDevice,
} from './cdi-spec.ts';
import { DRIVER, RESOURCE_API_GROUP, RESOURCE_API_VERSION } from './driver.ts';
import { BadKubeletRequestError, ClaimNotPreparableError } from './errors.ts';
import type { NodeDevice } from './node-device.ts';

/** The claim's identity as the kubelet sends it (untrusted until checked). */
export interface ClaimRef {
  namespace: string;
  uid: string;
  name: string;
}

/** One prepared device, as the kubelet wants it back. */
export interface PreparedDevice {
  requestNames: string[];
  poolName: string;
  deviceName: string;
  cdiDeviceIds: string[];
}

interface ResourceClaim {
  metadata?: { uid?: string };
  status?: {
    allocation?: {
      devices?: {
        results?: { request?: string; driver?: string; pool?: string; device?: string }[];
      };
    };
  };
}

export interface ClaimPreparerOptions {
  client: KubeClient;
  node: string;
  cdiDir: string;
  /** The device this node publishes under a DRA device name, if it still sees it. */
  lookup: (draName: string) => NodeDevice | undefined;
  cdi: CdiContext;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Throws a BadKubeletRequestError unless the claim's namespace, name and uid look like Kubernetes'. */
export function checkClaimRef(claim: ClaimRef): ClaimRef {
  if (typeof claim.namespace !== 'string' || !NAMESPACE.test(claim.namespace))
    throw new BadKubeletRequestError('claim namespace is missing or not a namespace name');
  if (typeof claim.name !== 'string' || !NAME.test(claim.name))
    throw new BadKubeletRequestError('claim name is missing or not an object name');
  checkClaimUid(typeof claim.uid === 'string' ? claim.uid : '');
  return claim;
}

export class ClaimPreparer {
  readonly #opts: ClaimPreparerOptions;

  constructor(opts: ClaimPreparerOptions) {
    this.#opts = opts;
  }

  /** Writes the claim's CDI spec and returns its devices; throws a ClaimNotPreparableError or BadKubeletRequestError. */
  async prepare(ref: ClaimRef, signal?: AbortSignal): Promise<PreparedDevice[]> {
    const { client, node, cdiDir, lookup, cdi } = this.#opts;
    const { namespace, name, uid } = checkClaimRef(ref);
    const what = `ResourceClaim ${namespace}/${name}`;
    let claim: ResourceClaim;
    try {
      claim = await client.request<ResourceClaim>(
        'GET',
        resourcePath({
          group: RESOURCE_API_GROUP,
          version: RESOURCE_API_VERSION,
          plural: 'resourceclaims',
          namespace,
          name,
        }),
        signal !== undefined ? { signal } : {},
      );
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404)
        throw new ClaimNotPreparableError(`${what} does not exist`);
      throw err;
    }
    if (claim.metadata?.uid !== uid)
      throw new ClaimNotPreparableError(
        `${what} has another uid than ${uid} (deleted and made again?)`,
      );
    const results = (claim.status?.allocation?.devices?.results ?? []).filter(
      (r) => r.driver === DRIVER && r.pool === node,
    );
    if (results.length === 0)
      throw new ClaimNotPreparableError(
        `${what} has no device of ${DRIVER} allocated on node ${node}`,
      );
    const devices: ClaimDevice[] = [];
    const prepared: PreparedDevice[] = [];
    for (const r of results) {
      const draName = r.device ?? '';
      const device = lookup(draName);
      if (device === undefined)
        throw new ClaimNotPreparableError(
          `${what}: device ${draName} is no longer seen on node ${node}`,
        );
      devices.push({ draName, device });
      prepared.push({
        requestNames: r.request !== undefined ? [r.request] : [],
        poolName: node,
        deviceName: draName,
        cdiDeviceIds: [cdiDeviceId(uid, draName)],
      });
    }
    await writeCdiSpec(cdiDir, uid, cdiSpecFor(uid, devices, cdi));
    return prepared;
  }

  /** Removes the claim's CDI spec (nothing to do if there is none). */
  async unprepare(ref: Pick<ClaimRef, 'uid'>): Promise<void> {
    await removeCdiSpec(
      this.#opts.cdiDir,
      checkClaimUid(typeof ref.uid === 'string' ? ref.uid : ''),
    );
  }
}
