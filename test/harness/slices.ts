// DeviceSlices written as a node's agent would write them (labels, owner
// reference to the Discovery), through the slim client as admin: for tests
// that run the controller without agents.
import { sliceName } from '../../src/api/names.ts';
import {
  API_VERSION,
  GROUP,
  LABEL_DISCOVERY,
  LABEL_NODE,
  VERSION,
  type DeviceSlice,
  type Discovery,
  type SliceDevice,
} from '../../src/api/types.ts';
import type { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { resourcePath } from '../../src/registry/kubernetes/client/paths.ts';

/** The path of a namespace's objects of one edgebridge.io kind, or of one of them. */
export function edgePath(plural: string, namespace: string, name?: string): string {
  return resourcePath({
    group: GROUP,
    version: VERSION,
    plural,
    namespace,
    ...(name !== undefined ? { name } : {}),
  });
}

/** Creates or replaces `node`'s first slice of `discovery` with these shared devices. */
export async function putSlice(
  admin: KubeClient,
  discovery: Discovery,
  node: string,
  devices: SliceDevice[],
): Promise<void> {
  const namespace = discovery.metadata.namespace ?? 'default';
  const name = sliceName(discovery.metadata.name, node, 0);
  const body: DeviceSlice = {
    apiVersion: API_VERSION,
    kind: 'DeviceSlice',
    metadata: {
      name,
      namespace,
      labels: { [LABEL_NODE]: node, [LABEL_DISCOVERY]: discovery.metadata.name },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: 'Discovery',
          name: discovery.metadata.name,
          uid: discovery.metadata.uid ?? '',
          controller: true,
        },
      ],
    },
    spec: {
      node,
      discovery: discovery.metadata.name,
      shared: true,
      devices,
      deviceCount: devices.length,
    },
  };
  const old = await admin
    .request<DeviceSlice>('GET', edgePath('deviceslices', namespace, name))
    .catch(() => undefined);
  if (old === undefined) {
    await admin.request('POST', edgePath('deviceslices', namespace), { body });
    return;
  }
  const version = old.metadata.resourceVersion;
  await admin.request('PUT', edgePath('deviceslices', namespace, name), {
    body: {
      ...body,
      metadata: {
        ...body.metadata,
        ...(version !== undefined ? { resourceVersion: version } : {}),
      },
    },
  });
}

/** A Discovery of the simulated handler that no agent runs (no node has the label it selects). */
export function createIdleDiscovery(
  admin: KubeClient,
  namespace: string,
  name: string,
): Promise<Discovery> {
  return admin.request<Discovery>('POST', edgePath('discoveries', namespace), {
    body: {
      apiVersion: API_VERSION,
      kind: 'Discovery',
      metadata: { name },
      spec: {
        handler: { name: 'simulated', details: {} },
        nodeSelector: { matchLabels: { 'edgebridge.io/test-no-agent': 'true' } },
      },
    },
  });
}
