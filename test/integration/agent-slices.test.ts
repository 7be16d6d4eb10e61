import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { DeviceSlice } from '../../src/api/types.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually, writeDevicesFile } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import { scratchDir } from '../harness/workdir.ts';

// The agent's own behaviour, asserted on the DeviceSlices it writes (no
// controller runs here, so no Device appears). Discoveries select only this
// file's node, so that agents of other test files ignore them.
const group = `slices-${process.pid}`;
const node = `${group}-a`;
const GROUP_LABEL = 'edgebridge.io/test-group';
const RESYNC_SECONDS = 2;
const G = { group: 'edgebridge.io', version: 'v1alpha1', plural: 'deviceslices' };

/** Slice writes the agent made (create, update, delete), from its request counter. */
const sliceWrites = async (agent: AgentProcess): Promise<number> => {
  let n = 0;
  for (const verb of ['create', 'update', 'delete'])
    n += await agent.metric('edgebridge_registry_requests_total', {
      verb,
      resource: 'deviceslices',
    });
  return n;
};

const ids = (n: number, prefix: string) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${String(i).padStart(3, '0')}` }));

describe("the agent writes only its own node's DeviceSlices (real API server)", () => {
  let started: ReturnType<typeof make> | undefined;
  let agent: AgentProcess | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installAgentRbac(info);
    const ns = await testNamespace(info, 'slices');
    const nodeObject = await createReadyNode(info, node, { [GROUP_LABEL]: group });
    agent = await startAgent({
      node,
      registryArgs: ['--kubeconfig', info.kubeconfigs.agent],
      extraArgs: ['--no-broker', '--resync-seconds', String(RESYNC_SECONDS)],
    });
    const custom = kubeConfigFor(info, 'admin').makeApiClient(CustomObjectsApi);
    const slices = async (discovery: string): Promise<DeviceSlice[]> => {
      const list = (await custom.listNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        labelSelector: `edgebridge.io/discovery=${discovery},edgebridge.io/node=${node}`,
      })) as { items: DeviceSlice[] };
      return list.items.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
    };
    return {
      info,
      ns,
      agent,
      nodeUid: nodeObject.metadata?.uid,
      custom,
      slices,
      objects: edgeObjects(info, ns.name),
      dir: scratchDir('agent-slices'),
      selector: { matchLabels: { [GROUP_LABEL]: group } },
    };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    await agent?.stop();
    const s = await settled(started);
    if (s === undefined) return;
    const core = kubeConfigFor(s.info, 'admin').makeApiClient(CoreV1Api);
    await core.deleteNode({ name: node }).catch(() => undefined);
    await s.ns.remove();
  });

  it('writes one slice per 128 devices, labelled, owned by the Discovery and the Node, with its conditions on the first', async () => {
    const { objects, dir, slices, nodeUid, selector } = await setup();
    const file = path.join(dir, 'many.yaml');
    writeDevicesFile(file, ids(130, 'cam'));
    const discovery = await objects.createDiscovery('many', {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: selector,
      intervalSeconds: 1,
    });
    const written = await eventually('two slices holding 130 devices', async () => {
      const list = await slices('many');
      return list.reduce((n, s) => n + s.spec.deviceCount, 0) === 130 ? list : undefined;
    });
    assert.deepEqual(
      written.map((s) => [s.metadata.name, s.spec.deviceCount]),
      [
        [`many-${node}-0`, 128],
        [`many-${node}-1`, 2],
      ],
    );
    for (const s of written) {
      assert.equal(s.spec.node, node);
      assert.equal(s.spec.discovery, 'many');
      assert.equal(s.spec.shared, true);
      assert.deepEqual(
        s.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid]),
        [
          ['Discovery', 'many', discovery.metadata.uid],
          ['Node', node, nodeUid],
        ],
      );
    }
    assert.deepEqual(
      written[0]?.spec.conditions?.map((c) => [c.type, c.status]),
      [['DetailsValid', 'True']],
    );
    assert.equal(written[1]?.spec.conditions, undefined);
  });

  it('writes one empty slice for a node that finds nothing, and its DetailsValid=False for bad details', async () => {
    const { objects, dir, slices, selector } = await setup();
    const file = path.join(dir, 'none.yaml');
    writeDevicesFile(file, []);
    await objects.createDiscovery('none', {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: selector,
      intervalSeconds: 1,
    });
    await objects.createDiscovery('bad', {
      handler: { name: 'simulated', details: { file, nonsense: true } },
      nodeSelector: selector,
    });
    const [empty] = await eventually('the empty slice', async () => {
      const list = await slices('none');
      return list.length === 1 ? list : undefined;
    });
    assert.equal(empty?.spec.deviceCount, 0);
    const [bad] = await eventually('the slice of the bad Discovery', async () => {
      const list = await slices('bad');
      return list.length === 1 ? list : undefined;
    });
    const valid = bad?.spec.conditions?.find((c) => c.type === 'DetailsValid');
    assert.equal(valid?.status, 'False');
    assert.equal(valid?.reason, 'InvalidDetails');
  });

  it('writes a handler change as one write of the slice it touches, and keeps a device unseen for less than the grace period', async () => {
    const { agent, objects, dir, slices, selector } = await setup();
    const file = path.join(dir, 'grace.yaml');
    const devices = ids(200, 'lamp');
    writeDevicesFile(file, devices);
    await objects.createDiscovery('grace', {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: selector,
      intervalSeconds: 1,
      gracePeriodSeconds: 6,
    });
    const before = await eventually('200 devices in slices', async () => {
      const list = await slices('grace');
      return list.reduce((n, s) => n + s.spec.deviceCount, 0) === 200 ? list : undefined;
    });
    const writes = await sliceWrites(agent);
    // lamp-150 leaves (second slice) and lamp-new comes: both touch only the second slice.
    writeDevicesFile(file, [...devices.filter((d) => d.id !== 'lamp-150'), { id: 'lamp-new' }]);
    const after = await eventually('lamp-new in a slice', async () => {
      const list = await slices('grace');
      return list.some((s) => s.spec.devices.some((d) => d.id === 'lamp-new')) ? list : undefined;
    });
    const second = after.find((s) => s.metadata.name === `grace-${node}-1`);
    assert.ok(
      second?.spec.devices.some((d) => d.id === 'lamp-150'),
      'lamp-150, unseen for less than the grace period, is still listed',
    );
    assert.equal(
      after.find((s) => s.metadata.name === `grace-${node}-0`)?.metadata.resourceVersion,
      before.find((s) => s.metadata.name === `grace-${node}-0`)?.metadata.resourceVersion,
      'the first slice was not written',
    );
    assert.equal((await sliceWrites(agent)) - writes, 1, 'one write');
    await eventually('lamp-150 to leave after its grace period', async () => {
      const list = await slices('grace');
      return list.every((s) => s.spec.devices.every((d) => d.id !== 'lamp-150')) ? true : undefined;
    });
  });

  it('puts back a slice deleted or edited by hand', async () => {
    const { custom, ns, objects, dir, slices, selector } = await setup();
    const file = path.join(dir, 'restore.yaml');
    writeDevicesFile(file, ids(3, 'door'));
    await objects.createDiscovery('restore', {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: selector,
      intervalSeconds: 1,
    });
    const name = `restore-${node}-0`;
    const [original] = await eventually('the slice', async () => {
      const list = await slices('restore');
      return list[0]?.spec.deviceCount === 3 ? list : undefined;
    });
    await custom.deleteNamespacedCustomObject({ ...G, namespace: ns.name, name });
    const [back] = await eventually('the slice to come back', async () => {
      const list = await slices('restore');
      return list[0]?.metadata.uid !== original?.metadata.uid && list[0]?.spec.deviceCount === 3
        ? list
        : undefined;
    });
    assert.deepEqual(back?.spec.devices, original?.spec.devices);
    const edited = { ...back, spec: { ...back?.spec, devices: [], deviceCount: 0 } };
    await custom.replaceNamespacedCustomObject({ ...G, namespace: ns.name, name, body: edited });
    await eventually('the hand edit undone', async () => {
      const [s] = await slices('restore');
      return s?.spec.deviceCount === 3 ? true : undefined;
    });
  });

  it('writes nothing in steady state, over several resyncs', async () => {
    const { agent, slices } = await setup();
    const versions = async () =>
      (await Promise.all(['many', 'none', 'restore'].map((d) => slices(d))))
        .flat()
        .map((s) => `${s.metadata.name}@${s.metadata.resourceVersion}`)
        .sort();
    // Settled: every earlier test's slices are written by now.
    const first = await versions();
    const writes = await sliceWrites(agent);
    await sleep(3 * RESYNC_SECONDS * 1000);
    assert.deepEqual(await versions(), first);
    assert.equal(await sliceWrites(agent), writes);
  });

  it("deletes the node's slices when the Discovery is deleted", async () => {
    const { objects, slices } = await setup();
    assert.ok((await slices('many')).length > 0);
    await objects.deleteDiscovery('many');
    await eventually('the slices gone', async () =>
      (await slices('many')).length === 0 ? true : undefined,
    );
  });
});
