// Device plugin claims of nodes that are gone, against the real control plane
// and the `edgebridge controller` process: three nodes claim slots of a shared
// Device (written as their agents' device plugins write them); one Node is
// deleted, one has been NotReady for longer than the node grace period, and the
// controller releases their claims and keeps those of the Ready one.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
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

describe('claims of nodes that are gone (real API server, controller process)', () => {
  let controller: ControllerProcess | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  after(async () => {
    await controller?.stop();
    await cleanup?.();
  });

  it('releases the slots of a deleted node and of one NotReady past the grace period, and keeps those of a Ready one', async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installControllerRbac(info);
    const ns = await testNamespace(info, 'ctl-claims');
    const suffix = randomBytes(3).toString('hex');
    const [gone, dead, kept] = ['gone', 'dead', 'kept'].map((n) => `claims-${n}-${suffix}`) as [
      string,
      string,
      string,
    ];
    for (const node of [gone, dead, kept]) await createReadyNode(info, node);
    const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
    const admin = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    cleanup = async () => {
      for (const name of [gone, dead, kept]) await core.deleteNode({ name }).catch(() => undefined);
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
    for (const node of [gone, dead, kept])
      await putSlice(admin, discovery, node, [{ id: 'cam-1' }]);
    const name = deviceName('cams', 'cam-1', true, '');
    await eventually('the Device, seen by the three nodes', async () => {
      const d = await admin.request<Device>('GET', edgePath('devices', ns.name, name));
      return d.status?.nodes?.length === 3 ? d : undefined;
    });

    // As the nodes' device plugins claim slots: at Allocate, then naming the pod.
    const resource = resourceName(name);
    const usage = {
      '0': formatClaim({ node: gone, resource, pod: `${ns.name}/reader-0` }),
      '1': formatClaim({ node: kept, resource, pod: `${ns.name}/reader-1` }),
      '2': formatClaim({ node: gone, resource }),
      '3': formatClaim({ node: dead, resource, pod: `${ns.name}/reader-3` }),
    };
    await admin.request('PATCH', `${edgePath('devices', ns.name, name)}/status`, {
      body: { status: { usage } },
      contentType: 'application/merge-patch+json',
    });

    await core.deleteNode({ name: gone });
    // No node lifecycle controller runs here: the test says the kubelet stopped an hour ago.
    const hourAgo = new Date(Date.now() - 3_600_000);
    await core.patchNodeStatus(
      {
        name: dead,
        body: {
          status: {
            conditions: [
              {
                type: 'Ready',
                status: 'Unknown',
                reason: 'NodeStatusUnknown',
                message: 'Kubelet stopped posting node status.',
                lastHeartbeatTime: hourAgo,
                lastTransitionTime: hourAgo,
              },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const after = await eventually('the claims of the gone nodes released', async () => {
      const d = await admin.request<Device>('GET', edgePath('devices', ns.name, name));
      const left = d.status?.usage ?? {};
      return left['0'] === undefined && left['3'] === undefined ? d : undefined;
    });
    assert.deepEqual(after.status?.usage, { '1': usage['1'] });
    assert.deepEqual(
      after.status?.nodes?.map((n) => n.name),
      [kept],
    );
  });
});
