import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { API_VERSION, GROUP, VERSION, type Device, type Discovery } from '../../src/api/types.ts';
import { viewOf } from '../../src/agent/device-view.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { resourcePath } from '../../src/registry/kubernetes/client/paths.ts';
import { KubernetesRegistry } from '../../src/registry/kubernetes/registry.ts';
import { installCrds } from '../harness/crds.ts';
import { testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';

const path = (plural: string, namespace: string, name?: string): string =>
  resourcePath({ group: GROUP, version: VERSION, plural, namespace, ...(name ? { name } : {}) });

describe('the Kubernetes registry: requests per Device write', () => {
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
          // No agent of another test file may write these Devices.
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

  it('writes a local device never seen stored object first, without asking (no 404)', async () => {
    const { ns, client, discovery, registry, requests } = await setup();
    const view = viewOf(discovery, { id: 'usb-1', properties: {} }, false, 'node-r');
    requests.length = 0;
    await registry.applyDevice(view, { known: false });
    assert.deepEqual(requests, ['apply devices 2xx', 'apply devices/status 2xx']);
    const device = await client.request<Device>('GET', path('devices', ns.name, view.name));
    assert.deepEqual(device.status?.nodes, [{ name: 'node-r' }]);
    // Known and unchanged: one status apply, which changes nothing.
    requests.length = 0;
    await registry.applyDevice(view, { known: true });
    assert.deepEqual(requests, ['apply devices/status 2xx']);
  });

  it('asks first for a shared device (another node may have made it)', async () => {
    const { ns, client, discovery, registry, requests } = await setup();
    const view = viewOf(discovery, { id: 'cam-1', properties: {} }, true, 'node-r');
    requests.length = 0;
    await registry.applyDevice(view, { known: false });
    assert.deepEqual(requests, [
      'apply devices/status 404',
      'apply devices 2xx',
      'apply devices/status 2xx',
    ]);
    const device = await client.request<Device>('GET', path('devices', ns.name, view.name));
    assert.deepEqual(device.status?.nodes, [{ name: 'node-r' }]);
  });
});
