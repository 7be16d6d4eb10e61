// A Discovery's BrokersCreated condition as the real `edgebridge controller`
// process writes it, with an agent making its Devices: False with the API
// server's reason while its broker cannot be made (a pod spec with an invalid
// field; a namespace's ResourceQuota), and True again once that is fixed (the
// Discovery edited; the quota raised, with no change to the Discovery).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { Condition } from '../../src/api/types.ts';
import { LABEL_DEVICE } from '../../src/controller/broker-workloads.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually, writeDevicesFile } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { scratchDir } from '../harness/workdir.ts';

const node = `brokers-status-${process.pid}`;
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const G = { group: 'edgebridge.io', version: 'v1alpha1' };

describe('BrokersCreated, written by the controller process (real API server)', () => {
  let agent: AgentProcess | undefined;
  let controller: ControllerProcess | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  after(async () => {
    await agent?.stop();
    await controller?.stop();
    await cleanup?.();
  });

  it('is False with the API server’s reason while a broker is refused, and True once fixed', async () => {
    // The controller manager makes the namespace's default ServiceAccount and
    // counts the quota's usage; no scheduler: the broker Pods stay Pending.
    const info = await useControlPlane({ controllerManager: true });
    await installCrds(info);
    await installControllerRbac(info);
    const ns = await testNamespace(info, 'brokers-status');
    await createReadyNode(info, node);
    const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
    const custom = kubeConfigFor(info, 'admin').makeApiClient(CustomObjectsApi);
    cleanup = async () => {
      await core.deleteNode({ name: node }).catch(() => undefined);
      await ns.remove();
    };
    controller = await startController(info, { namespace: ns.name });
    const objects = edgeObjects(info, ns.name);
    const file = path.join(scratchDir('broker-status-devices'), 'devices.yaml');
    writeDevicesFile(file, [{ id: 'cam-1' }]);
    const spec = (podSpec: Record<string, unknown>) => ({
      handler: { name: 'simulated' as const, details: { file } },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node } },
      broker: { podSpec },
    });
    const container = (name: string) => ({
      containers: [{ name, image: 'registry.invalid/broker:1' }],
    });
    agent = await startAgent({ node, registryArgs: ['--kubeconfig', info.kubeconfigs.agent] });

    const brokersCreated = async (discovery: string): Promise<Condition | undefined> =>
      (await objects.getDiscovery(discovery)).status?.conditions?.find(
        (c) => c.type === 'BrokersCreated',
      );
    const condition = (discovery: string, status: 'True' | 'False') =>
      eventually(`BrokersCreated=${status} on ${discovery}`, async () => {
        const c = await brokersCreated(discovery);
        return c?.status === status ? c : undefined;
      });
    const brokerPods = async (discovery: string): Promise<string[]> => {
      const devices = await objects.devices(discovery);
      const names: string[] = [];
      for (const d of devices) {
        const pods = await core.listNamespacedPod({
          namespace: ns.name,
          labelSelector: `${LABEL_DEVICE}=${d.metadata.name}`,
        });
        names.push(...pods.items.map((p) => p.metadata?.name ?? ''));
      }
      return names;
    };
    const patchDiscovery = (name: string, body: object) =>
      custom.patchNamespacedCustomObject(
        { ...G, namespace: ns.name, plural: 'discoveries', name, body },
        mergePatch,
      );

    // An invalid field value: refused with 422, reported, no Pod.
    await objects.createDiscovery('cams', spec(container('Broker_1')));
    const invalid = await condition('cams', 'False');
    assert.match(invalid.message, /Invalid value: "Broker_1"/);
    assert.equal((await objects.devices('cams')).length, 1);
    assert.deepEqual(await brokerPods('cams'), []);
    // The Discovery fixed: the broker is made, and the condition says so.
    await patchDiscovery('cams', { spec: { broker: { podSpec: container('broker') } } });
    await condition('cams', 'True');
    assert.equal((await brokerPods('cams')).length, 1);

    // A quota with room for that one Pod only (used once the quota controller counted it).
    await core.createNamespacedResourceQuota({
      namespace: ns.name,
      body: { metadata: { name: 'pods' }, spec: { hard: { pods: '1' } } },
    });
    await eventually('the quota to count the broker Pod', async () => {
      const q = await core.readNamespacedResourceQuota({ name: 'pods', namespace: ns.name });
      return q.status?.used?.pods === '1' ? true : undefined;
    });
    await objects.createDiscovery('sticks', spec(container('broker')));
    const quota = await condition('sticks', 'False');
    assert.match(quota.message, /exceeded quota: pods/);
    assert.deepEqual(await brokerPods('sticks'), []);
    assert.equal((await brokersCreated('cams'))?.status, 'True', 'the other Discovery is fine');
    // The quota raised; the Discovery is not touched, yet its broker is made.
    await core.patchNamespacedResourceQuota(
      { name: 'pods', namespace: ns.name, body: { spec: { hard: { pods: '5' } } } },
      mergePatch,
    );
    await condition('sticks', 'True');
    assert.equal((await brokerPods('sticks')).length, 1);
  });
});
