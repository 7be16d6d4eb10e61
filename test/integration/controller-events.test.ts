// A Device's story in Kubernetes Events, as the controller tells it against the
// real control plane: created, conflict, node removed, node added, deleted.
// Controllers of other test files may share the API server and tell it too, so
// the assertions ask for at least one Event of each kind, never exact counts.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deviceName } from '../../src/api/names.ts';
import type { Device } from '../../src/api/types.ts';
import type { KubeEvent } from '../../src/controller/event-writer.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { resourcePath } from '../../src/registry/kubernetes/client/paths.ts';
import { installControllerRbac, startController } from '../harness/controller.ts';
import { installCrds } from '../harness/crds.ts';
import { eventually } from '../harness/devices.ts';
import { testNamespace, useControlPlane } from '../harness/kube.ts';
import { kubectlAsAdmin } from '../harness/kubectl.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { createIdleDiscovery, edgePath, putSlice } from '../harness/slices.ts';

describe('Events on Devices from the controller', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installControllerRbac(info);
    const ns = await testNamespace(info, 'ctl-events');
    const admin = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    const controller = await startController(info, { name: 'ctl-events', namespace: ns.name });
    return { info, ns, admin, controller };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    await s.controller.stop();
    await s.ns.remove();
    s.admin.close();
  });

  it('tells a Device’s story: Created, Conflict, NodeRemoved, NodeAdded, Deleted', async () => {
    const { info, ns, admin } = await setup();
    const discovery = await createIdleDiscovery(admin, ns.name, 'cams');
    const suffix = randomBytes(2).toString('hex');
    const [n1, n2] = [`ev-a-${suffix}`, `ev-b-${suffix}`];
    const name = deviceName('cams', 'cam-1', true, n1);
    const events = async (): Promise<KubeEvent[]> =>
      (
        await admin.request<{ items: KubeEvent[] }>(
          'GET',
          resourcePath({
            group: 'events.k8s.io',
            version: 'v1',
            plural: 'events',
            namespace: ns.name,
          }),
        )
      ).items.filter((e) => e.regarding.name === name);
    const eventOf = (reason: string, note: RegExp) =>
      eventually(`a ${reason} Event`, async () =>
        (await events()).find((e) => e.reason === reason && note.test(e.note)),
      );
    const nodesOf = async (): Promise<string[] | undefined> => {
      const d = await admin
        .request<Device>('GET', edgePath('devices', ns.name, name))
        .catch(() => undefined);
      return d?.status?.nodes?.map((n) => n.name).sort();
    };

    // Two nodes see the shared device, and disagree on a property.
    await putSlice(admin, discovery, n1, [{ id: 'cam-1', properties: { MODEL: 'x1' } }]);
    await putSlice(admin, discovery, n2, [{ id: 'cam-1', properties: { MODEL: 'x2' } }]);
    const created = await eventOf('Created', /discovered by/);
    assert.equal(created.type, 'Normal');
    assert.equal(created.reportingController, 'edgebridge.io/controller');
    const conflict = await eventOf('Conflict', /MODEL/);
    assert.equal(conflict.type, 'Warning');
    assert.doesNotMatch(conflict.note, /x1|x2/, 'keys only, never values');
    await eventually('both nodes on the Device', async () =>
      (await nodesOf())?.length === 2 ? true : undefined,
    );
    const { stdout } = await kubectlAsAdmin(info, 'describe', 'device', name, '-n', ns.name);
    assert.match(stdout, /Normal\s+Created\s+.*edgebridge\.io\/controller/);
    assert.match(stdout, /Warning\s+Conflict\s+.*MODEL/);

    // One node no longer sees it, then sees it again.
    await putSlice(admin, discovery, n2, []);
    await eventOf('NodeRemoved', new RegExp(n2));
    await putSlice(admin, discovery, n2, [{ id: 'cam-1', properties: { MODEL: 'x1' } }]);
    await eventOf('NodeAdded', new RegExp(n2));

    // Neither sees it: the Device goes, and its last Event says so.
    await putSlice(admin, discovery, n1, []);
    await putSlice(admin, discovery, n2, []);
    await eventOf('Deleted', /no node/);
    assert.equal(await nodesOf(), undefined);
  });
});
