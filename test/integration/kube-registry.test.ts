import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  API_VERSION,
  GROUP,
  LABEL_DISCOVERY,
  LABEL_NODE,
  VERSION,
  type DeviceSlice,
  type Discovery,
} from '../../src/api/types.ts';
import { RegistryConflictError } from '../../src/registry/errors.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { resourcePath } from '../../src/registry/kubernetes/client/paths.ts';
import { KubernetesRegistry } from '../../src/registry/kubernetes/registry.ts';
import { installCrds } from '../harness/crds.ts';
import { testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';

const path = (plural: string, namespace: string, name?: string): string =>
  resourcePath({ group: GROUP, version: VERSION, plural, namespace, ...(name ? { name } : {}) });

describe('the Kubernetes registry: DeviceSlice requests', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    const ns = await testNamespace(info, 'kube-registry');
    const connection = loadKubeConfigFiles([info.kubeconfigs.admin]);
    const client = new KubeClient(connection);
    const discovery = await client.request<Discovery>('POST', path('discoveries', ns.name), {
      body: {
        apiVersion: API_VERSION,
        kind: 'Discovery',
        metadata: { name: 'reg' },
        spec: {
          handler: { name: 'simulated', details: {} },
          // No agent of another test file runs it.
          nodeSelector: { matchLabels: { 'edgebridge.io/test-no-agent': 'true' } },
        },
      },
    });
    const requests: string[] = [];
    const registry = new KubernetesRegistry({
      connection,
      fieldManager: 'node-r',
      log: pino({ level: 'silent' }),
      onRequest: (verb, resource, code) => requests.push(`${verb} ${resource} ${code}`),
    });
    return { ns, client, discovery, registry, requests };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    await s.registry.close();
    s.client.close();
    await s.ns.remove();
  });

  const sliceOf = (ns: string, discovery: Discovery, node: string): DeviceSlice => ({
    apiVersion: API_VERSION,
    kind: 'DeviceSlice',
    metadata: {
      name: `reg-${node}-0`,
      namespace: ns,
      labels: { [LABEL_NODE]: node, [LABEL_DISCOVERY]: 'reg' },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: 'Discovery',
          name: 'reg',
          uid: discovery.metadata.uid ?? '',
          controller: true,
        },
      ],
    },
    spec: {
      node,
      discovery: 'reg',
      shared: true,
      devices: [{ id: 'cam-1', properties: { URL: 'rtsp://cam-1/' } }],
      deviceCount: 1,
    },
  });

  it('creates a slice in one request, replaces it in one, and refuses a stale version as a conflict', async () => {
    const { ns, discovery, registry, requests } = await setup();
    requests.length = 0;
    const created = await registry.putSlice(sliceOf(ns.name, discovery, 'node-r'));
    assert.deepEqual(requests, ['create deviceslices 2xx']);
    assert.ok(created.metadata.resourceVersion !== undefined);
    requests.length = 0;
    const replaced = await registry.putSlice({
      ...created,
      spec: { ...created.spec, devices: [], deviceCount: 0 },
    });
    assert.deepEqual(requests, ['update deviceslices 2xx']);
    assert.equal(replaced.spec.deviceCount, 0);
    await assert.rejects(registry.putSlice(created), RegistryConflictError);
    await assert.rejects(
      registry.putSlice(sliceOf(ns.name, discovery, 'node-r')),
      RegistryConflictError,
    );
  });

  it("watches only its node's slices, and deletes a slice (one already gone is no error)", async () => {
    const { ns, discovery, registry } = await setup();
    await registry.putSlice(sliceOf(ns.name, discovery, 'node-s'));
    await registry.putSlice(sliceOf(ns.name, discovery, 'node-t'));
    const abort = new AbortController();
    const seen: string[][] = [];
    const watching = registry.watchNodeSlices(
      'node-s',
      (slices) => seen.push(slices.map((x) => x.metadata.name)),
      abort.signal,
    );
    const until = async (what: string, check: () => boolean) => {
      for (let i = 0; !check(); i++) {
        assert.ok(i < 200, `timed out waiting for ${what}`);
        await sleep(50);
      }
    };
    await until('the first list', () => seen.length > 0);
    assert.deepEqual(seen.at(-1), ['reg-node-s-0']);
    await registry.deleteSlice(ns.name, 'reg-node-s-0');
    await until('the deletion', () => seen.at(-1)?.length === 0);
    await registry.deleteSlice(ns.name, 'reg-node-s-0');
    abort.abort();
    await watching;
  });
});
