// A DeviceClass per Discovery, so that a ResourceClaim can ask for "a device
// of this Discovery" and narrow it with its own CEL selector. Cluster-scoped,
// so its name carries the Discovery's namespace.
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';
import { DRIVER, MAX_ATTRIBUTE_VALUE, RESOURCE_API_GROUP, RESOURCE_API_VERSION } from './driver.ts';

/** A DeviceClass that cannot be made for this Discovery (its name is too long for an attribute). */
export class DeviceClassNameError extends Error {
  readonly code = 'EDGEBRIDGE_DRA_DEVICE_CLASS';
  constructor(message: string) {
    super(message);
    this.name = 'DeviceClassNameError';
  }
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** `<discovery>.<namespace>.edgebridge.io`: a DNS subdomain unique per Discovery. */
export function deviceClassName(namespace: string, discovery: string): string {
  return `${discovery}.${namespace}.${DRIVER}`;
}

/** The DeviceClass object for a Discovery (its selector matches the attributes of attributes.ts). */
export function deviceClassFor(namespace: string, discovery: string): object {
  if (!NAMESPACE.test(namespace) || !SUBDOMAIN.test(discovery))
    throw new DeviceClassNameError(
      `${JSON.stringify(namespace.slice(0, 64))}/${JSON.stringify(discovery.slice(0, 64))} is not a Discovery's namespace and name`,
    );
  const name = deviceClassName(namespace, discovery);
  // The selector compares attributes, which hold at most 64 characters.
  if (discovery.length > MAX_ATTRIBUTE_VALUE || name.length > 253)
    throw new DeviceClassNameError(
      `Discovery ${namespace}/${discovery}: a name longer than ${MAX_ATTRIBUTE_VALUE} characters cannot be selected in DRA`,
    );
  const attrs = `device.attributes["${DRIVER}"]`;
  return {
    apiVersion: `${RESOURCE_API_GROUP}/${RESOURCE_API_VERSION}`,
    kind: 'DeviceClass',
    metadata: {
      name,
      labels: { 'edgebridge.io/discovery': discovery, 'edgebridge.io/namespace': namespace },
    },
    spec: {
      selectors: [
        {
          cel: {
            // Names are DNS labels and subdomains: nothing in them needs quoting.
            expression: `device.driver == "${DRIVER}" && ${attrs}.namespace == "${namespace}" && ${attrs}.discovery == "${discovery}"`,
          },
        },
      ],
    },
  };
}

/**
 * Creates the Discovery's DeviceClass if it does not exist (an existing one is
 * left as it is: an admin may have edited it). For the agent at start, or a
 * controller; `kubectl apply` of manifests/samples/ does the same.
 */
export async function ensureDeviceClass(
  client: KubeClient,
  namespace: string,
  discovery: string,
  signal?: AbortSignal,
): Promise<void> {
  const body = deviceClassFor(namespace, discovery);
  try {
    await client.request(
      'POST',
      resourcePath({
        group: RESOURCE_API_GROUP,
        version: RESOURCE_API_VERSION,
        plural: 'deviceclasses',
      }),
      { body, ...(signal !== undefined ? { signal } : {}) },
    );
  } catch (err) {
    if (!(err instanceof KubeApiError && err.status === 409)) throw err;
  }
}
