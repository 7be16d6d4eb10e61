import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileSync, renameSync } from 'node:fs';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Device, Discovery } from '../../src/api/types.ts';
import type { ControlPlaneInfo } from './control-plane.ts';
import { kubeConfigFor } from './kube.ts';

const G = { group: 'edgebridge.io', version: 'v1alpha1' };

/** Polls `check` until it returns a value other than undefined; fails after `timeoutMs` naming `what`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`,
      );
    }
    await sleep(200);
  }
}

/** Writes the simulated handler's devices file atomically (rename), as an operator's tool would. */
export function writeDevicesFile(
  file: string,
  devices: { id: string; properties?: Record<string, string>; labels?: Record<string, string> }[],
): void {
  writeFileSync(
    `${file}.tmp`,
    file.endsWith('.json') ? JSON.stringify(devices) : stringify(devices),
  );
  renameSync(`${file}.tmp`, file);
}

/** Admin access to Discoveries and Devices of one namespace. */
export function edgeObjects(info: ControlPlaneInfo, namespace: string) {
  const custom = kubeConfigFor(info, 'admin').makeApiClient(CustomObjectsApi);
  return {
    async createDiscovery(name: string, spec: Discovery['spec']): Promise<Discovery> {
      return (await custom.createNamespacedCustomObject({
        ...G,
        namespace,
        plural: 'discoveries',
        body: { apiVersion: 'edgebridge.io/v1alpha1', kind: 'Discovery', metadata: { name }, spec },
      })) as Discovery;
    },
    async getDiscovery(name: string): Promise<Discovery> {
      return (await custom.getNamespacedCustomObject({
        ...G,
        namespace,
        plural: 'discoveries',
        name,
      })) as Discovery;
    },
    async deleteDiscovery(name: string): Promise<void> {
      await custom.deleteNamespacedCustomObject({ ...G, namespace, plural: 'discoveries', name });
    },
    async annotateDiscovery(name: string, annotations: Record<string, string>): Promise<void> {
      // A merge patch: the controller writes the Discovery's status meanwhile, so
      // a read-then-replace could fail with a conflict.
      await custom.patchNamespacedCustomObject(
        { ...G, namespace, plural: 'discoveries', name, body: { metadata: { annotations } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    },
    async devices(discovery?: string): Promise<Device[]> {
      const list = (await custom.listNamespacedCustomObject({
        ...G,
        namespace,
        plural: 'devices',
        ...(discovery !== undefined
          ? { labelSelector: `edgebridge.io/discovery=${discovery}` }
          : {}),
      })) as { items: Device[] };
      return list.items;
    },
  };
}
