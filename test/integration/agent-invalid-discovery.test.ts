// A Discovery edited into something this node cannot run, against the real
// control plane: a schema-invalid edit is refused by the API server (the
// Devices stay with the running discovery); an edit to invalid details stops
// the handler, and this node's devices leave its slice only after the grace
// period. The controller, running here, makes Devices of the slices.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { Discovery } from '../../src/api/types.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually, writeDevicesFile } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { scratchDir } from '../harness/workdir.ts';

const node = `invalid-${process.pid}`;
const GRACE_SECONDS = 20;

describe('a Discovery edited into one the agent cannot run (real API server)', () => {
  const agents: AgentProcess[] = [];
  let controller: ControllerProcess | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await controller?.stop();
    await cleanup?.();
  });

  it('keeps its devices through a refused schema-invalid edit, and for the grace period after invalid details', async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installAgentRbac(info);
    await installControllerRbac(info);
    const ns = await testNamespace(info, 'invalid');
    controller = await startController(info, { namespace: ns.name });
    await createReadyNode(info, node, { 'edgebridge.io/test-group': node });
    const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
    cleanup = async () => {
      await core.deleteNode({ name: node }).catch(() => undefined);
      await ns.remove();
    };
    const objects = edgeObjects(info, ns.name);
    const custom = kubeConfigFor(info, 'admin').makeApiClient(CustomObjectsApi);
    const G = { group: 'edgebridge.io', version: 'v1alpha1', namespace: ns.name };
    const file = path.join(scratchDir('invalid-devices'), 'devices.yaml');
    writeDevicesFile(file, [{ id: 'cam-1' }, { id: 'cam-2' }]);
    await objects.createDiscovery('cams', {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node } },
      intervalSeconds: 1,
      gracePeriodSeconds: GRACE_SECONDS,
    });
    const agent = await startAgent({
      node,
      registryArgs: ['--kubeconfig', info.kubeconfigs.agent],
    });
    agents.push(agent);
    await eventually('two devices', async () =>
      (await objects.devices('cams')).length === 2 ? true : undefined,
    );

    // A schema-invalid edit never reaches the agent: the API server refuses it.
    // Merge patches: the controller writes the Discovery's status meanwhile.
    const patchSpec = (spec: Record<string, unknown>) =>
      custom.patchNamespacedCustomObject(
        { ...G, plural: 'discoveries', name: 'cams', body: { spec } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await assert.rejects(patchSpec({ capacity: 'many' }), (err: { code?: number }) => {
      assert.equal(err.code, 422);
      return true;
    });
    assert.equal((await objects.devices('cams')).length, 2);

    // Invalid details: the handler stops, the devices stay for the grace period, then go.
    await patchSpec({ handler: { name: 'simulated', details: { bogus: true } } });
    await eventually('DetailsValid=False', async () => {
      const d = await objects.getDiscovery('cams');
      return d.status?.conditions?.find((c) => c.type === 'DetailsValid' && c.status === 'False');
    });
    assert.equal((await objects.devices('cams')).length, 2, 'deleted inside the grace period');
    // A handler still running would list this one within a second or so, and
    // the count would never reach 0.
    writeDevicesFile(file, [{ id: 'cam-1' }, { id: 'cam-2' }, { id: 'cam-3' }]);
    await eventually(
      "this node's devices to go after the grace period",
      async () => ((await objects.devices('cams')).length === 0 ? true : undefined),
      GRACE_SECONDS * 1000 + 60_000,
    );
    const d: Discovery = await eventually('the controller’s count of 0', async () => {
      const got = await objects.getDiscovery('cams');
      return got.status?.devices === 0 ? got : undefined;
    });
    assert.equal(d.status?.conditions?.find((c) => c.type === 'DetailsValid')?.status, 'False');
  });
});
