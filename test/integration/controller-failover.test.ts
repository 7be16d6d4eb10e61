// Two `edgebridge controller` replicas with leader election against the real
// control plane: one leads; SIGKILLed, the other takes over once the Lease
// expired, and writes nothing that was already true.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deviceName } from '../../src/api/names.ts';
import type { Device, SliceDevice } from '../../src/api/types.ts';
import type { KubeEvent } from '../../src/controller/event-writer.ts';
import type { Lease } from '../../src/controller/lease-record.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { parseMicroTime } from '../../src/registry/kubernetes/client/micro-time.ts';
import { resourcePath } from '../../src/registry/kubernetes/client/paths.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { installCrds } from '../harness/crds.ts';
import { eventually } from '../harness/devices.ts';
import { testNamespace, useControlPlane } from '../harness/kube.ts';
import { kubectlAsAdmin } from '../harness/kubectl.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { createIdleDiscovery, edgePath, putSlice } from '../harness/slices.ts';

/** The controller's default lease duration: the takeover is measured against it. */
const LEASE_MS = 15_000;
const LEASE_NAMESPACE = 'edgebridge-system';

const leasePath = (name: string) =>
  resourcePath({
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    namespace: LEASE_NAMESPACE,
    name,
  });

describe('controller failover', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installControllerRbac(info);
    const ns = await testNamespace(info, 'failover');
    const admin = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    return { info, ns, admin };
  };
  const setup = lazy(() => (started = make()));
  const controllers: ControllerProcess[] = [];
  const leases: string[] = [];
  after(async () => {
    await Promise.all(controllers.map((c) => c.stop()));
    const s = await settled(started);
    if (s === undefined) return;
    for (const l of leases) await s.admin.request('DELETE', leasePath(l)).catch(() => undefined);
    await s.ns.remove();
    s.admin.close();
  });

  it('the leader SIGKILLed, the other replica takes over after the Lease expired and rewrites no Device', async () => {
    const { info, ns, admin } = await setup();
    const discovery = await createIdleDiscovery(admin, ns.name, 'cams');
    // A node without a Node object (a host without a kubelet) counts for the fold.
    const node = `failover-${randomBytes(2).toString('hex')}`;
    const put = (devices: SliceDevice[]) => putSlice(admin, discovery, node, devices);
    const cams = ['cam-1', 'cam-2', 'cam-3'].map((id) => ({ id, properties: { ID: id } }));
    await put(cams);
    const names = cams.map((c) => deviceName('cams', c.id, true, node));

    const lease = `failover-${randomBytes(3).toString('hex')}`;
    leases.push(lease);
    const args = ['--leader-elect', `--leader-elect-lease=${lease}`, '--resync-period=3s'];
    const [a, b] = await Promise.all(
      ['ctl-a', 'ctl-b'].map((name) =>
        startController(info, { name, extraArgs: args, namespace: ns.name }),
      ),
    );
    assert.ok(a !== undefined && b !== undefined);
    controllers.push(a, b);
    const identityOf = (c: ControllerProcess): unknown =>
      c.logLines().find((l) => l.msg === 'controller started')?.identity;

    const devices = async (): Promise<Map<string, Device>> => {
      const list = await admin.request<{ items: Device[] }>('GET', edgePath('devices', ns.name));
      return new Map(list.items.map((d) => [d.metadata.name, d]));
    };
    // Converged: every Device with its node, and a resync period on nothing has changed.
    const before = await eventually('the leader to write the Devices', async () => {
      const now = await devices();
      const all = names.every((n) => now.get(n)?.status?.nodes?.some((e) => e.name === node));
      return all ? now : undefined;
    });
    const read = (l: string) => admin.request<Lease>('GET', leasePath(l));
    const held = await read(lease);
    const leader = identityOf(a) === held.spec?.holderIdentity ? a : b;
    const standby = leader === a ? b : a;
    assert.equal(held.spec?.holderIdentity, identityOf(leader));
    assert.notEqual(identityOf(standby), undefined);
    // Only the leader reconciles (the standby has not started a term).
    assert.equal(
      standby.logLines().some((l) => l.msg === 'started leading'),
      false,
      'the standby does not lead',
    );

    leader.process.signal('SIGKILL');
    await leader.process.waitForExit();
    const lastRenew = parseMicroTime((await read(lease)).spec?.renewTime);
    const taken = await eventually(
      'the standby to take the Lease',
      async () => {
        const l = await read(lease);
        return l.spec?.holderIdentity === identityOf(standby) ? l : undefined;
      },
      LEASE_MS + 30_000,
    );
    const acquired = parseMicroTime(taken.spec?.acquireTime);
    assert.ok(lastRenew !== undefined && acquired !== undefined);
    assert.ok(acquired - lastRenew >= LEASE_MS, 'the standby waited for the Lease to expire');

    // The new leader works: a fourth device becomes a Device.
    const cam4 = { id: 'cam-4', properties: { ID: 'cam-4' } };
    await put([...cams, cam4]);
    await eventually('the new leader to write the new Device', async () =>
      (await devices()).get(deviceName('cams', 'cam-4', true, node))?.status?.nodes?.length === 1
        ? true
        : undefined,
    );
    // Its Event tells the new Device's story, from the new leader.
    const cam4Name = deviceName('cams', 'cam-4', true, node);
    const created = await eventually('the Created Event of the new Device', async () => {
      const list = await admin.request<{ items: KubeEvent[] }>(
        'GET',
        resourcePath({
          group: 'events.k8s.io',
          version: 'v1',
          plural: 'events',
          namespace: ns.name,
        }),
      );
      return list.items.find((e) => e.regarding.name === cam4Name && e.reason === 'Created');
    });
    assert.equal(created.reportingController, 'edgebridge.io/controller');
    assert.equal(created.reportingInstance, identityOf(standby));
    const { stdout } = await kubectlAsAdmin(info, 'describe', 'device', cam4Name, '-n', ns.name);
    assert.match(stdout, /Normal\s+Created\s+.*edgebridge\.io\/controller/);
    // ...and after its first full pass and a resync, rewrote none of the others.
    await eventually('a resync of the new leader', () =>
      Promise.resolve(
        standby.logLines().filter((l) => l.msg === 'resync: every Device and Discovery queued')
          .length >= 2
          ? true
          : undefined,
      ),
    );
    const later = await devices();
    for (const n of names)
      assert.equal(
        later.get(n)?.metadata.resourceVersion,
        before.get(n)?.metadata.resourceVersion,
        `Device ${n} was written again`,
      );
  });
});
