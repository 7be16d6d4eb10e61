// The agent with --device-plugin-dir: what its discoveries find on the node
// becomes kubelet resources, end to end, against the real API server and a
// kubelet-side peer.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { startAgent } from '../harness/agent.ts';
import { installControllerRbac, startController } from '../harness/controller.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually, writeDevicesFile } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import { scratchDir } from '../harness/workdir.ts';
import { KubeletPeer } from '../peers/fixtures/kubelet/kubelet-peer.ts';

const node = `dp-agent-${process.pid}`;
const POD_BROKER = 'mqtt://192.0.2.20:1883';

describe('the agent serving its devices to the kubelet', () => {
  const base = mkdtempSync(path.join(tmpdir(), 'dpa-'));
  after(() => rmSync(base, { recursive: true, force: true }));

  it(
    'offers what a discovery finds, gives it out with its properties, and withdraws it when it goes',
    { timeout: 120_000 },
    async (t) => {
      const info = await useControlPlane();
      await installCrds(info);
      await installAgentRbac(info);
      await installControllerRbac(info);
      const ns = await testNamespace(info, 'dp-agent');
      // Devices come from the controller, as in a cluster.
      const controller = await startController(info, { namespace: ns.name });
      t.after(() => controller.stop());
      t.after(ns.remove);
      await createReadyNode(info, node);
      t.after(async () => {
        const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
        await core.deleteNode({ name: node }).catch(() => undefined);
      });
      const dir = path.join(base, 'dp');
      mkdirSync(dir);
      const kubelet = await KubeletPeer.start(dir, path.join(base, 'pr.sock'));
      t.after(() => kubelet.close());
      const agent = await startAgent({
        node,
        registryArgs: ['--kubeconfig', info.kubeconfigs.agent],
        extraArgs: [
          '--device-plugin-dir',
          dir,
          '--pod-resources-socket',
          kubelet.podResourcesSocket,
          '--pod-broker-url',
          POD_BROKER,
        ],
      });
      t.after(() => agent.stop());

      const file = path.join(scratchDir('dp-agent'), 'devices.yaml');
      writeDevicesFile(file, [{ id: 'cam-1', properties: { SIM_URL: 'rtsp://cam-1/stream' } }]);
      const objects = edgeObjects(info, ns.name);
      await objects.createDiscovery('dpcams', {
        handler: { name: 'simulated', details: { file } },
        nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node } },
        intervalSeconds: 1,
        gracePeriodSeconds: 1,
      });
      const [device] = await eventually('the Device', async () => {
        const list = await objects.devices('dpcams');
        return list.length === 1 ? list : undefined;
      });
      assert.ok(device);

      const client = await kubelet.plugin('edgebridge.io/dpcams');
      const watch = client.watch();
      const [offered] = await watch.until((l) => l.length === 1);
      assert.equal(offered?.health, 'Healthy');
      const res = await client.allocate([offered?.ID ?? '']);
      const envs = res.containerResponses[0]?.envs;
      assert.equal(envs?.SIM_URL, 'rtsp://cam-1/stream');
      assert.equal(envs?.EDGEBRIDGE_BROKER_URL, POD_BROKER);
      assert.equal(
        envs?.EDGEBRIDGE_TOPIC_PREFIX,
        `edgebridge/v1/${ns.name}/${device.metadata.name}`,
      );

      // Gone from the node (after its grace period): the last device of the
      // Discovery, so the resource turns Unhealthy and its socket closes.
      writeDevicesFile(file, []);
      await watch.until((l) => l.length === 1 && l[0]?.health === 'Unhealthy');
    },
  );
});
