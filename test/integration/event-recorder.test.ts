import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pino } from 'pino';
import { API_VERSION, GROUP, VERSION, type Device } from '../../src/api/types.ts';
import {
  KubeEventRecorder,
  type DropReason,
  type EventRecorderOptions,
} from '../../src/controller/event-recorder.ts';
import { KubeEventWriter, type KubeEvent } from '../../src/controller/event-writer.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { resourcePath } from '../../src/registry/kubernetes/client/paths.ts';
import { TEST_USERS, type ControlPlaneInfo } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import { eventually } from '../harness/devices.ts';
import { testNamespace, useControlPlane } from '../harness/kube.ts';
import { applyManifests, kubectlAsAdmin, oncePerControlPlane } from '../harness/kubectl.ts';
import { lazy, settled } from '../harness/lazy.ts';

const MANIFESTS = path.resolve(import.meta.dirname, '..', '..', 'manifests');

/** The controller's ClusterRole from the manifests, in force for the controller's token. */
const installControllerRole = oncePerControlPlane(async (info: ControlPlaneInfo) => {
  await applyManifests(info, [path.join(MANIFESTS, 'controller', 'rbac.yaml')]);
  await eventually('the controller may create Events', async () => {
    const r = await kubectlAsAdmin(
      info,
      'auth',
      'can-i',
      'create',
      'events.events.k8s.io',
      '-n',
      'default',
      `--as=${TEST_USERS.controller.name}`,
    ).catch((err: unknown) => ({ stdout: (err as { stdout?: string }).stdout ?? '' }));
    return r.stdout.trim() === 'yes' ? true : undefined;
  });
});

describe('Kubernetes Events on Devices against a real API server', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installControllerRole(info);
    const ns = await testNamespace(info, 'events');
    const admin = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    // The recorder writes as the controller, with the manifests' rights.
    const controller = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.controller]));
    return { info, ns, admin, controller };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    await s.ns.remove();
    s.admin.close();
    s.controller.close();
  });

  /** A Device created as an admin (no controller runs in this file's namespace's tests). */
  const createDevice = async (admin: KubeClient, namespace: string, name: string) =>
    admin.request<Device>(
      'POST',
      resourcePath({ group: GROUP, version: VERSION, plural: 'devices', namespace }),
      {
        body: {
          apiVersion: API_VERSION,
          kind: 'Device',
          metadata: { name },
          spec: { discovery: 'cams', handler: 'simulated', shared: true, id: name, capacity: 1 },
        },
      },
    );
  const ref = (d: Device) => ({
    apiVersion: API_VERSION,
    kind: 'Device',
    name: d.metadata.name,
    namespace: d.metadata.namespace ?? '',
    uid: d.metadata.uid ?? '',
  });
  const recorder = (client: KubeClient, extra: Partial<EventRecorderOptions> = {}) => {
    const dropped: DropReason[] = [];
    const r = new KubeEventRecorder({
      writer: new KubeEventWriter(client),
      log: pino({ level: 'warn' }),
      instance: 'events-test',
      metrics: { written: () => undefined, dropped: (reason) => dropped.push(reason) },
      ...extra,
    });
    return { recorder: r, dropped };
  };
  const eventsOf = async (admin: KubeClient, namespace: string, device: string) =>
    (
      await admin.request<{ items: KubeEvent[] }>(
        'GET',
        resourcePath({ group: 'events.k8s.io', version: 'v1', plural: 'events', namespace }),
      )
    ).items.filter((e) => e.regarding.name === device);

  it('shows the Events recorded on a Device in `kubectl describe device`', async () => {
    const { info, ns, admin, controller } = await setup();
    const device = await createDevice(admin, ns.name, 'cam-story');
    const { recorder: r, dropped } = recorder(controller);
    r.record(ref(device), 'Normal', 'Created', 'Device created from the slices of node-a');
    r.record(ref(device), 'Normal', 'NodeAdded', 'node-b sees the device');
    r.record(ref(device), 'Warning', 'Conflict', 'node-a and node-b disagree on MDNS_HOST');
    await r.close();
    assert.deepEqual(dropped, []);
    const { stdout } = await kubectlAsAdmin(info, 'describe', 'device', 'cam-story', '-n', ns.name);
    const events = stdout.slice(stdout.indexOf('Events:'));
    assert.match(
      events,
      /Normal\s+Created\s+.*edgebridge\.io\/controller\s+Device created from the slices of node-a/,
    );
    assert.match(events, /Normal\s+NodeAdded\s+.*node-b sees the device/);
    assert.match(events, /Warning\s+Conflict\s+.*node-a and node-b disagree on MDNS_HOST/);
  });

  it('folds a flood of 1,000 identical Events into one Event with the count', async () => {
    const { info, ns, admin, controller } = await setup();
    const device = await createDevice(admin, ns.name, 'cam-flood');
    const { recorder: r, dropped } = recorder(controller, { seriesFlushMs: 200 });
    for (let i = 0; i < 1000; i++)
      r.record(ref(device), 'Warning', 'Conflict', 'node-a and node-b disagree on MDNS_HOST');
    await r.close();
    assert.deepEqual(dropped, []);
    const events = await eventsOf(admin, ns.name, 'cam-flood');
    assert.equal(events.length, 1);
    assert.equal(events[0]?.series?.count, 1000);
    const { stdout } = await kubectlAsAdmin(info, 'describe', 'device', 'cam-flood', '-n', ns.name);
    assert.match(stdout, /Warning\s+Conflict\s+.*\(x1000 over/);
  });

  it('caps a flood of distinct Events on one Device at the burst, counting the rest', async () => {
    const { ns, admin, controller } = await setup();
    const device = await createDevice(admin, ns.name, 'cam-distinct');
    const { recorder: r, dropped } = recorder(controller);
    for (let i = 0; i < 1000; i++)
      r.record(ref(device), 'Normal', 'NodeAdded', `node-${i} sees the device`);
    await r.close();
    const events = await eventsOf(admin, ns.name, 'cam-distinct');
    assert.equal(events.length, 25);
    assert.equal(dropped.filter((d) => d === 'rate_limited').length, 975);
    assert.equal(dropped.length, 975);
  });
});
