// Device plugin claims of a node that is gone, against the real control plane
// and the `edgebridge controller` process: two nodes claim slots of a shared
// Device (written as their agents' device plugins write them); one Node is
// deleted, and the controller releases its claims and keeps the other's.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { deviceName } from '../../src/api/names.ts';
import { API_VERSION, type Device, type Discovery } from '../../src/api/types.ts';
import { formatClaim } from '../../src/deviceplugin/claims.ts';
import { resourceName } from '../../src/deviceplugin/resource-names.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { installCrds } from '../harness/crds.ts';
import { eventually } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { edgePath, putSlice } from '../harness/slices.ts';

describe('claims of a deleted node (real API server, controller process)', () => {
  let controller: ControllerProcess | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  after(async () => {
    await controller?.stop();
    await cleanup?.();
  });

  it('releases the slots a deleted node claimed and keeps those of the node still there', async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installControllerRbac(info);
    const ns = await testNamespace(info, 'ctl-claims');
    const suffix = randomBytes(3).toString('hex');
    const [gone, kept] = [`claims-gone-${suffix}`, `claims-kept-${suffix}`];
    for (const node of [gone, kept]) await createReadyNode(info, node);
    const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
    const admin = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    cleanup = async () => {
      for (const name of [gone, kept]) await core.deleteNode({ name }).catch(() => undefined);
      await ns.remove();
      admin.close();
    };
    controller = await startController(info, { name: 'ctl-claims', namespace: ns.name });

    const discovery = await admin.request<Discovery>('POST', edgePath('discoveries', ns.name), {
      body: {
        apiVersion: API_VERSION,
        kind: 'Discovery',
        metadata: { name: 'cams' },
        // No agent runs it: the test writes the slices.
        spec: {
          handler: { name: 'simulated', details: {} },
          nodeSelector: { matchLabels: { 'edgebridge.io/test-no-agent': 'true' } },
          capacity: 3,
        },
      },
    });
    for (const node of [gone, kept]) await putSlice(admin, discovery, node, [{ id: 'cam-1' }]);
    const name = deviceName('cams', 'cam-1', true, '');
    await eventually('the Device, seen by both nodes', async () => {
      const d = await admin.request<Device>('GET', edgePath('devices', ns.name, name));
      return d.status?.nodes?.length === 2 ? d : undefined;
    });

    // As the nodes' device plugins claim slots: at Allocate, then naming the pod.
    const resource = resourceName(name);
    const usage = {
      '0': formatClaim({ node: gone, resource, pod: `${ns.name}/reader-0` }),
      '1': formatClaim({ node: kept, resource, pod: `${ns.name}/reader-1` }),
      '2': formatClaim({ node: gone, resource }),
    };
    await admin.request('PATCH', `${edgePath('devices', ns.name, name)}/status`, {
      body: { status: { usage } },
      contentType: 'application/merge-patch+json',
    });

    await core.deleteNode({ name: gone });
    const after = await eventually('the deleted node’s claims released', async () => {
      const d = await admin.request<Device>('GET', edgePath('devices', ns.name, name));
      return d.status?.usage?.['0'] === undefined ? d : undefined;
    });
    assert.deepEqual(after.status?.usage, { '1': usage['1'] });
    assert.deepEqual(
      after.status?.nodes?.map((n) => n.name),
      [kept],
    );
  });
});
