// A DeviceClass per Discovery, so that a ResourceClaim can ask for "a device
// of this Discovery" and narrow it with its own CEL selector. Cluster-scoped,
// so its name carries the Discovery's namespace.
import { LABEL_DISCOVERY } from '../api/types.ts';
import { KubeApiError } from '../registry/kubernetes/client/errors.ts';
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';
import { DRIVER, MAX_ATTRIBUTE_VALUE, RESOURCE_API_GROUP, RESOURCE_API_VERSION } from './driver.ts';

/** A DeviceClass that cannot be made for this Discovery (its name is too long for an attribute or a label). */
export class DeviceClassNameError extends Error {
  readonly code = 'EDGEBRIDGE_DRA_DEVICE_CLASS';
  constructor(message: string) {
    super(message);
    this.name = 'DeviceClassNameError';
  }
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** A label value holds at most 63 characters. */
const MAX_LABEL_VALUE = 63;

/** With edgebridge.io/discovery, names a DeviceClass's Discovery (cluster-scoped: no owner reference to it). */
export const LABEL_CLASS_NAMESPACE = 'edgebridge.io/namespace';

/** A resource.k8s.io/v1 DeviceClass, as far as edgebridge writes it. */
export interface DeviceClass {
  apiVersion: string;
  kind: 'DeviceClass';
  metadata: { name: string; labels: Record<string, string> };
  spec: { selectors: { cel: { expression: string } }[] };
}

/** `<discovery>.<namespace>.edgebridge.io`: a DNS subdomain unique per Discovery. */
export function deviceClassName(namespace: string, discovery: string): string {
  return `${discovery}.${namespace}.${DRIVER}`;
}

/** The DeviceClass object for a Discovery (its selector matches the attributes of attributes.ts). */
export function deviceClassFor(namespace: string, discovery: string): DeviceClass {
  if (!NAMESPACE.test(namespace) || !SUBDOMAIN.test(discovery))
    throw new DeviceClassNameError(
      `${JSON.stringify(namespace.slice(0, 64))}/${JSON.stringify(discovery.slice(0, 64))} is not a Discovery's namespace and name`,
    );
  const name = deviceClassName(namespace, discovery);
  // The selector compares attributes (at most 64 characters), and the name is a label value (63).
  const longest = Math.min(MAX_ATTRIBUTE_VALUE, MAX_LABEL_VALUE);
  if (discovery.length > longest || name.length > 253)
    throw new DeviceClassNameError(
      `Discovery ${namespace}/${discovery}: a name longer than ${longest} characters cannot have a DeviceClass`,
    );
  const attrs = `device.attributes["${DRIVER}"]`;
  return {
    apiVersion: `${RESOURCE_API_GROUP}/${RESOURCE_API_VERSION}`,
    kind: 'DeviceClass',
    metadata: {
      name,
      labels: { [LABEL_DISCOVERY]: discovery, [LABEL_CLASS_NAMESPACE]: namespace },
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
 * left as it is: an admin may have edited it). In a cluster the controller's
 * DeviceClass reconciler does this; tests and benchmarks without one call it.
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
