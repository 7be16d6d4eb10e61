// `edgebridge controller` makes each Discovery's DRA DeviceClass, against the
// real API server (resource.k8s.io/v1): made for a new Discovery, made again
// when deleted, deleted when the Discovery goes, a hand-made one left alone;
// and a claim on the controller's class, narrowed by the `handler` attribute
// of a slice as the agent lays it out, is allocated by the real kube-scheduler.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pino } from 'pino';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  ResourceV1Api,
  type V1DeviceClass,
} from '@kubernetes/client-node';
import { layoutSlices } from '../../src/agent/slice-layout.ts';
import { deviceName } from '../../src/api/names.ts';
import { GROUP, VERSION, type Discovery } from '../../src/api/types.ts';
import { deviceClassFor, deviceClassName } from '../../src/dra/device-class.ts';
import { draDeviceName } from '../../src/dra/resource-slices.ts';
import { startDra } from '../../src/dra/start-dra.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { scratchDir } from '../harness/workdir.ts';

const nodeName = `dra-class-node-${process.pid}`;
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'edgebridge-controller' };

describe('the controller’s DeviceClass per Discovery', () => {
  let started: ReturnType<typeof make> | undefined;
  let controller: ControllerProcess | undefined;
  const make = async () => {
    const info = await useControlPlane({ controllerManager: true, scheduler: true });
    await installCrds(info);
    await installControllerRbac(info);
    const ns = await testNamespace(info, 'dra-class');
    controller = await startController(info, { namespace: ns.name, name: 'dra-class-controller' });
    const node = await createReadyNode(info, nodeName);
    const dir = scratchDir('dra-class');
    const dra = await startDra({
      node: nodeName,
      log: pino({ level: 'warn' }),
      kubeconfig: info.kubeconfigs.admin,
      cdiDir: path.join(dir, 'cdi'),
      registryDir: path.join(dir, 'plugins_registry'),
      pluginDir: path.join(dir, 'plugins'),
    });
    const kc = kubeConfigFor(info, 'admin');
    return {
      info,
      ns: ns.name,
      removeNamespace: ns.remove,
      nodeUid: node.metadata?.uid ?? '',
      dra,
      objects: edgeObjects(info, ns.name),
      core: kc.makeApiClient(CoreV1Api),
      custom: kc.makeApiClient(CustomObjectsApi),
      resource: kc.makeApiClient(ResourceV1Api),
    };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    await controller?.stop();
    const s = await settled(started);
    if (s === undefined) return;
    await s.dra.close();
    await s.core
      .deleteNamespacedPod({ namespace: s.ns, name: 'viewer', gracePeriodSeconds: 0 })
      .catch(() => undefined);
    // The Node's ResourceSlices go with it (owner reference).
    await s.core.deleteNode({ name: nodeName }).catch(() => undefined);
    const classes = await s.resource.listDeviceClass({
      labelSelector: `edgebridge.io/namespace=${s.ns}`,
    });
    for (const c of classes.items)
      await s.resource.deleteDeviceClass({ name: c.metadata?.name ?? '' }).catch(() => undefined);
    await s.removeNamespace();
  });

  /** The DeviceClass of that name, or undefined when there is none. */
  const readClass = async (
    resource: ResourceV1Api,
    name: string,
  ): Promise<V1DeviceClass | undefined> => {
    try {
      return await resource.readDeviceClass({ name });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  };

  let camsUid = '';

  it('makes a new Discovery’s DeviceClass, labelled as its own, and makes it again when it is deleted', async () => {
    const { ns, objects, resource } = await setup();
    const discovery = await objects.createDiscovery('cams', {
      handler: { name: 'simulated', details: {} },
    });
    camsUid = discovery.metadata.uid ?? '';
    const name = deviceClassName(ns, 'cams');
    const made = await eventually('the controller to make the DeviceClass', () =>
      readClass(resource, name),
    );
    const wanted = deviceClassFor(ns, 'cams');
    const expressions = (c: V1DeviceClass) => c.spec.selectors?.map((s) => s.cel?.expression);
    assert.deepEqual(made.metadata?.labels, { ...wanted.metadata.labels, ...MANAGED_BY });
    assert.deepEqual(
      expressions(made),
      wanted.spec.selectors.map((s) => s.cel.expression),
    );

    await resource.deleteDeviceClass({ name });
    const again = await eventually('the DeviceClass to be made again', async () => {
      const c = await readClass(resource, name);
      return c !== undefined && c.metadata?.uid !== made.metadata?.uid ? c : undefined;
    });
    assert.deepEqual(expressions(again), expressions(made));
  });

  it('has the real kube-scheduler allocate a device for a claim on that class, chosen by its handler attribute', async () => {
    const { ns, nodeUid, custom, core, resource } = await setup();
    // The slice as the agent lays it out (labels included), written as admin.
    const { put } = layoutSlices({
      namespace: ns,
      discovery: { name: 'cams', uid: camsUid },
      node: nodeName,
      nodeUid,
      shared: true,
      handler: 'simulated',
      devices: [{ id: 'cam-1', properties: { SIMULATED_MODEL: 'X100' } }],
      conditions: [],
      stored: [],
    });
    for (const body of put)
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: 'deviceslices',
        body,
      });
    const device = draDeviceName(ns, deviceName('cams', 'cam-1', true, nodeName));
    await eventually('the device to be published', async () => {
      const slices = await resource.listResourceSlice({
        fieldSelector: `spec.nodeName=${nodeName},spec.driver=edgebridge.io`,
      });
      return slices.items.some((s) => s.spec.devices?.some((d) => d.name === device))
        ? true
        : undefined;
    });
    await resource.createNamespacedResourceClaim({
      namespace: ns,
      body: {
        metadata: { name: 'simulated-camera' },
        spec: {
          devices: {
            requests: [
              {
                name: 'cam',
                exactly: {
                  deviceClassName: deviceClassName(ns, 'cams'),
                  selectors: [
                    {
                      cel: {
                        expression: 'device.attributes["edgebridge.io"].handler == "simulated"',
                      },
                    },
                  ],
                },
              },
            ],
          },
        },
      },
    });
    await eventually('the default service account', async () =>
      core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }),
    );
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'viewer' },
        spec: {
          resourceClaims: [{ name: 'cam', resourceClaimName: 'simulated-camera' }],
          containers: [
            {
              name: 'main',
              image: 'registry.invalid/none:0',
              resources: { claims: [{ name: 'cam' }] },
            },
          ],
        },
      },
    });
    const placed = await eventually('the pod to be scheduled', async () => {
      const p = await core.readNamespacedPod({ namespace: ns, name: 'viewer' });
      return p.spec?.nodeName !== undefined && p.spec.nodeName !== '' ? p.spec.nodeName : undefined;
    });
    assert.equal(placed, nodeName);
    const claim = await resource.readNamespacedResourceClaim({
      namespace: ns,
      name: 'simulated-camera',
    });
    assert.deepEqual(
      claim.status?.allocation?.devices?.results?.map((r) => [r.driver, r.pool, r.device]),
      [['edgebridge.io', nodeName, device]],
    );
  });

  it('reports a Discovery whose name cannot be a DeviceClass in one condition and one log line, and carries on', async () => {
    const { ns, objects, custom } = await setup();
    const long = `long-${'n'.repeat(59)}`;
    await objects.createDiscovery(long, { handler: { name: 'simulated', details: {} } });
    const condition = await eventually('the DeviceClassCreated condition', async () => {
      const d = (await custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: 'discoveries',
        name: long,
      })) as Discovery;
      return d.status?.conditions?.find((c) => c.type === 'DeviceClassCreated');
    });
    assert.equal(condition.status, 'False');
    assert.match(condition.message, /longer than 63 characters cannot have a DeviceClass/);
    const lines = (controller?.logLines() ?? []).filter(
      (l) => l.msg === 'no DeviceClass for this Discovery' && l.discovery === long,
    );
    assert.equal(lines.length, 1);
  });

  it('deletes the DeviceClass when its Discovery goes, and leaves a hand-made one alone', async () => {
    const { ns, objects, resource } = await setup();
    // An admin's class for a Discovery, made before the Discovery: not the controller's.
    const handMade = deviceClassFor(ns, 'manual');
    const expression = `${handMade.spec.selectors[0]?.cel.expression ?? ''} && device.attributes["edgebridge.io"].handler == "usb"`;
    await resource.createDeviceClass({
      body: { ...handMade, spec: { selectors: [{ cel: { expression } }] } },
    });
    await objects.createDiscovery('manual', { handler: { name: 'usb', details: {} } });
    assert.ok(await readClass(resource, deviceClassName(ns, 'cams')), 'cams has its DeviceClass');
    await objects.deleteDiscovery('manual');
    await objects.deleteDiscovery('cams');
    await eventually('the DeviceClass of cams to be deleted', async () =>
      (await readClass(resource, deviceClassName(ns, 'cams'))) === undefined ? true : undefined,
    );
    const kept = await readClass(resource, handMade.metadata.name);
    assert.equal(kept?.spec.selectors?.[0]?.cel?.expression, expression);
  });
});
