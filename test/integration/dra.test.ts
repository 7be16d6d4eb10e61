import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import {
  CoreV1Api,
  CustomObjectsApi,
  ResourceV1Api,
  type V1ResourceSlice,
} from '@kubernetes/client-node';
import { deviceName } from '../../src/api/names.ts';
import { ensureDeviceClass, deviceClassName } from '../../src/dra/device-class.ts';
import { DraDriver } from '../../src/dra/dra-driver.ts';
import { startDra } from '../../src/dra/start-dra.ts';
import type { NodeDevice } from '../../src/dra/node-device.ts';
import { draDeviceName } from '../../src/dra/resource-slices.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { installCrds } from '../harness/crds.ts';
import { eventually } from '../harness/devices.ts';
import { kubectlAsAdmin } from '../harness/kubectl.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { scratchDir } from '../harness/workdir.ts';
import { KubeletDraPeer } from '../peers/fixtures/kubelet-dra.ts';

const nodeName = `dra-node-${process.pid}`;
const BROKER_URL = 'mqtt://192.0.2.10:1883';

function camera(ns: string, name: string, manufacturer: string): NodeDevice {
  return {
    namespace: ns,
    name,
    labels: { 'onvif.edgebridge.io/manufacturer': manufacturer },
    spec: {
      discovery: 'cams',
      handler: 'onvif',
      shared: true,
      id: `urn:uuid:${name}`,
      properties: {
        ONVIF_MANUFACTURER: manufacturer,
        ONVIF_MODEL: 'X100',
        ONVIF_DEVICE_SERVICE_URL: `http://192.0.2.${manufacturer.length}/onvif/device_service`,
      },
    },
    node: {},
  };
}

function stick(ns: string): NodeDevice {
  return {
    namespace: ns,
    name: 'sticks-5e4d3c2b1a',
    spec: {
      discovery: 'sticks',
      handler: 'usb',
      shared: false,
      id: 'SER1',
      properties: { USB_VENDOR_ID: '1d6b', USB_PRODUCT_ID: '0104' },
    },
    node: { deviceNodes: [{ hostPath: '/dev/bus/usb/001/004' }] },
  };
}

/** A device whose properties are all wrong for attributes: 10 KB, control characters, odd names. */
function hostile(ns: string): NodeDevice {
  return {
    namespace: ns,
    name: 'cams-ffffffffff',
    spec: {
      discovery: 'cams',
      handler: 'onvif',
      shared: true,
      id: 'urn:uuid:hostile',
      properties: {
        ONVIF_MANUFACTURER: 'A'.repeat(10 * 1024),
        ONVIF_MODEL: 'evil\u0000\u001b[31m',
        'not a name!': 'x',
        [`LONG_${'N'.repeat(10 * 1024)}`]: 'y',
      },
    },
    node: {},
  };
}

describe('Dynamic Resource Allocation: ResourceSlices, the real kube-scheduler, and the kubelet plugin', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane({ controllerManager: true, scheduler: true });
    const ns = await testNamespace(info, 'dra');
    await createReadyNode(info, nodeName, { 'edgebridge.io/test-node': nodeName });
    const client = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    const dir = scratchDir('dra');
    const driver = new DraDriver({
      client,
      node: nodeName,
      log: pino({ level: 'warn' }),
      cdiDir: path.join(dir, 'cdi'),
      registryDir: path.join(dir, 'plugins_registry'),
      pluginDir: path.join(dir, 'plugins'),
      brokerUrl: BROKER_URL,
      coalesceMs: 50,
    });
    await driver.start();
    const kc = kubeConfigFor(info, 'admin');
    return {
      info,
      ns,
      client,
      driver,
      dir,
      core: kc.makeApiClient(CoreV1Api),
      resource: kc.makeApiClient(ResourceV1Api),
    };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    await s.driver.close();
    await s.resource
      .deleteDeviceClass({ name: deviceClassName(s.ns.name, 'cams') })
      .catch(() => undefined);
    await s.resource
      .deleteDeviceClass({ name: `sticks.${s.ns.name}.edgebridge.io` })
      .catch(() => undefined);
    await s.core.deleteNode({ name: nodeName }).catch(() => undefined);
    s.client.close();
    await s.ns.remove();
  });

  const slicesOf = async (resource: ResourceV1Api): Promise<V1ResourceSlice[]> =>
    (
      await resource.listResourceSlice({
        fieldSelector: `spec.nodeName=${nodeName},spec.driver=edgebridge.io`,
      })
    ).items;

  it('publishes the node’s devices as one pool with attributes, owned by the Node; bad values are left out', async () => {
    const { ns, driver, resource, core } = await setup();
    driver.update([
      camera(ns.name, 'cams-0a1b2c3d4e', 'Acme'),
      camera(ns.name, 'cams-1b2c3d4e5f', 'Globex'),
      stick(ns.name),
      hostile(ns.name),
    ]);
    await driver.settled();
    const slices = await slicesOf(resource);
    assert.equal(slices.length, 1);
    const [slice] = slices;
    assert.equal(slice?.spec.pool.name, nodeName);
    assert.equal(slice?.spec.pool.resourceSliceCount, 1);
    const node = await core.readNode({ name: nodeName });
    assert.deepEqual(
      slice?.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid]),
      [['Node', nodeName, node.metadata?.uid]],
    );
    const byName = new Map(slice?.spec.devices?.map((d) => [d.name, d.attributes ?? {}]));
    assert.equal(byName.size, 4);
    const acme = byName.get(draDeviceName(ns.name, 'cams-0a1b2c3d4e'));
    assert.equal(acme?.manufacturer?.string, 'Acme');
    assert.equal(acme?.discovery?.string, 'cams');
    assert.equal(acme?.shared?.bool, true);
    assert.equal(byName.get(draDeviceName(ns.name, 'sticks-5e4d3c2b1a'))?.vendorId?.string, '1d6b');
    const bad = byName.get(draDeviceName(ns.name, 'cams-ffffffffff'));
    assert.ok(bad !== undefined, 'the hostile device is published, without its bad attributes');
    assert.equal(bad.manufacturer?.string, '');
    assert.equal(bad.model?.string, '');
    assert.equal(bad.device?.string, 'cams-ffffffffff');
  });

  it('writes nothing when the devices did not change, and bumps the generation when they did', async () => {
    const { ns, driver, resource } = await setup();
    const before = (await slicesOf(resource))[0];
    const writes = driver.sliceWrites;
    const devices = [
      camera(ns.name, 'cams-0a1b2c3d4e', 'Acme'),
      camera(ns.name, 'cams-1b2c3d4e5f', 'Globex'),
      stick(ns.name),
      hostile(ns.name),
    ];
    driver.update(devices);
    await driver.settled();
    assert.equal(driver.sliceWrites, writes);
    assert.equal(
      (await slicesOf(resource))[0]?.metadata?.resourceVersion,
      before?.metadata?.resourceVersion,
    );
    driver.update(devices.slice(0, 3));
    await driver.settled();
    const after = (await slicesOf(resource))[0];
    assert.equal(after?.spec.pool.generation, (before?.spec.pool.generation ?? 0) + 1);
    assert.equal(after?.spec.devices?.length, 3);
  });

  it('has the real scheduler allocate a camera by manufacturer (CEL) and a USB stick by vendor id, for a pod on the node; the kubelet plugin prepares and unprepares it as a CDI spec', async () => {
    const { ns, client, driver, resource, core, dir } = await setup();
    await ensureDeviceClass(client, ns.name, 'cams');
    await ensureDeviceClass(client, ns.name, 'cams'); // a second time is fine
    await resource.createDeviceClass({
      body: {
        metadata: { name: `sticks.${ns.name}.edgebridge.io` },
        spec: { selectors: [{ cel: { expression: 'device.driver == "edgebridge.io"' } }] },
      },
    });
    const attrs = 'device.attributes["edgebridge.io"]';
    const claim = await resource.createNamespacedResourceClaim({
      namespace: ns.name,
      body: {
        metadata: { name: 'camera-and-stick' },
        spec: {
          devices: {
            requests: [
              {
                name: 'cam',
                exactly: {
                  deviceClassName: deviceClassName(ns.name, 'cams'),
                  selectors: [{ cel: { expression: `${attrs}.manufacturer == "Acme"` } }],
                },
              },
              {
                name: 'stick',
                exactly: {
                  deviceClassName: `sticks.${ns.name}.edgebridge.io`,
                  selectors: [{ cel: { expression: `${attrs}.vendorId == "1d6b"` } }],
                },
              },
            ],
          },
        },
      },
    });
    await eventually('the default service account', async () =>
      core.readNamespacedServiceAccount({ namespace: ns.name, name: 'default' }),
    );
    await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'viewer' },
        spec: {
          resourceClaims: [{ name: 'devs', resourceClaimName: 'camera-and-stick' }],
          containers: [
            {
              name: 'main',
              image: 'registry.invalid/none:0',
              resources: { claims: [{ name: 'devs' }] },
            },
          ],
        },
      },
    });
    const placed = await eventually('the pod to be scheduled', async () => {
      const p = await core.readNamespacedPod({ namespace: ns.name, name: 'viewer' });
      return p.spec?.nodeName !== undefined && p.spec.nodeName !== '' ? p.spec.nodeName : undefined;
    });
    assert.equal(placed, nodeName);
    const allocated = await resource.readNamespacedResourceClaim({
      namespace: ns.name,
      name: 'camera-and-stick',
    });
    const acmeName = draDeviceName(ns.name, 'cams-0a1b2c3d4e');
    const stickName = draDeviceName(ns.name, 'sticks-5e4d3c2b1a');
    assert.deepEqual(
      allocated.status?.allocation?.devices?.results?.map((r) => [
        r.request,
        r.driver,
        r.pool,
        r.device,
      ]),
      [
        ['cam', 'edgebridge.io', nodeName, acmeName],
        ['stick', 'edgebridge.io', nodeName, stickName],
      ],
    );

    const kubelet = await KubeletDraPeer.register(driver.plugin.registrationSocket);
    try {
      assert.equal(kubelet.info.name, 'edgebridge.io');
      assert.equal(kubelet.info.endpoint, driver.plugin.pluginSocket);
      const uid = claim.metadata?.uid ?? '';
      const ref = { namespace: ns.name, name: 'camera-and-stick', uid };
      const answer = await kubelet.prepare([ref]);
      const prepared = answer.claims[uid];
      assert.equal(prepared?.error, '');
      assert.deepEqual(
        prepared?.devices.map((d) => [
          d.request_names,
          d.pool_name,
          d.device_name,
          d.cdi_device_ids,
        ]),
        [
          [['cam'], nodeName, acmeName, [`edgebridge.io/device=${uid}-${acmeName}`]],
          [['stick'], nodeName, stickName, [`edgebridge.io/device=${uid}-${stickName}`]],
        ],
      );
      const file = path.join(dir, 'cdi', `edgebridge.io-device_${uid}.json`);
      const spec = JSON.parse(readFileSync(file, 'utf8')) as {
        cdiVersion: string;
        kind: string;
        devices: { name: string; containerEdits: { env: string[]; deviceNodes?: unknown[] } }[];
      };
      assert.equal(spec.kind, 'edgebridge.io/device');
      assert.equal(spec.cdiVersion, '0.6.0');
      const [cam, usb] = spec.devices;
      assert.ok(cam?.containerEdits.env.includes('ONVIF_MANUFACTURER=Acme'));
      assert.ok(cam?.containerEdits.env.includes(`EDGEBRIDGE_BROKER_URL=${BROKER_URL}`));
      assert.ok(
        cam?.containerEdits.env.includes(
          `EDGEBRIDGE_TOPIC_PREFIX=edgebridge/v1/${ns.name}/cams-0a1b2c3d4e`,
        ),
      );
      assert.deepEqual(usb?.containerEdits.deviceNodes, [
        { path: '/dev/bus/usb/001/004', hostPath: '/dev/bus/usb/001/004' },
      ]);

      const undone = await kubelet.unprepare([ref]);
      assert.equal(undone.claims[uid]?.error, '');
      assert.equal(existsSync(file), false);
      // Unprepare is idempotent: the kubelet may call it again after a restart.
      assert.equal((await kubelet.unprepare([ref])).claims[uid]?.error, '');
    } finally {
      kubelet.close();
    }
  });

  it('answers unknown, malformed and mismatched claims with one clear error each, and keeps serving', async () => {
    const { ns, driver } = await setup();
    const kubelet = await KubeletDraPeer.register(driver.plugin.registrationSocket);
    try {
      const answer = await kubelet.prepare([
        { namespace: ns.name, name: 'no-such-claim', uid: '11111111-2222-3333-4444-555555555555' },
        {
          namespace: ns.name,
          name: 'camera-and-stick',
          uid: '99999999-2222-3333-4444-555555555555',
        },
        { namespace: ns.name, name: 'x', uid: '../../etc/passwd' },
        { namespace: 'Bad Namespace', name: 'x'.repeat(10 * 1024), uid: 'u1' },
      ]);
      assert.match(
        answer.claims['11111111-2222-3333-4444-555555555555']?.error ?? '',
        /does not exist/,
      );
      assert.match(
        answer.claims['99999999-2222-3333-4444-555555555555']?.error ?? '',
        /another uid/,
      );
      assert.match(answer.claims['../../etc/passwd']?.error ?? '', /claim uid .* is not valid/);
      assert.match(answer.claims.u1?.error ?? '', /namespace is missing or not a namespace name/);
      for (const c of Object.values(answer.claims)) {
        assert.deepEqual(c.devices, []);
        assert.ok(c.error.length < 400, 'an error does not echo 10 KB back');
      }
      const unprepared = await kubelet.unprepare([{ namespace: ns.name, name: 'x', uid: '../x' }]);
      assert.match(unprepared.claims['../x']?.error ?? '', /is not valid/);
      // Still serving.
      assert.equal(
        (await KubeletDraPeer.register(driver.plugin.registrationSocket)).info.name,
        'edgebridge.io',
      );
    } finally {
      kubelet.close();
    }
  });

  it('accepts manifests/samples/dra.yaml (server-side dry run)', async () => {
    const { info } = await setup();
    const sample = path.resolve(import.meta.dirname, '../../manifests/samples/dra.yaml');
    const { stdout: out } = await kubectlAsAdmin(info, 'apply', '--dry-run=server', '-f', sample);
    assert.match(
      out,
      /resourceclaimtemplate.resource.k8s.io\/acme-device created \(server dry run\)/,
    );
  });

  it('has its slices garbage-collected with the Node', async () => {
    const { core, resource } = await setup();
    assert.ok((await slicesOf(resource)).length > 0);
    await core.deleteNode({ name: nodeName });
    await eventually('the node’s ResourceSlices to be collected', async () =>
      (await slicesOf(resource)).length === 0 ? true : undefined,
    );
  });
});

describe('DRA fed from the node’s DeviceSlices (what `edgebridge agent --dra` runs)', () => {
  const node = `dra-feed-${process.pid}`;
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    const ns = await testNamespace(info, 'dra-feed');
    const client = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    const dir = scratchDir('dra-feed');
    const dra = await startDra({
      node,
      log: pino({ level: 'warn' }),
      kubeconfig: info.kubeconfigs.admin,
      cdiDir: path.join(dir, 'cdi'),
      registryDir: path.join(dir, 'plugins_registry'),
      pluginDir: path.join(dir, 'plugins'),
    });
    const kc = kubeConfigFor(info, 'admin');
    return {
      ns,
      client,
      dra,
      custom: kc.makeApiClient(CustomObjectsApi),
      resource: kc.makeApiClient(ResourceV1Api),
    };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    await s.dra.close();
    for (const slice of (
      await s.resource.listResourceSlice({ fieldSelector: `spec.nodeName=${node}` })
    ).items)
      await s.resource.deleteResourceSlice({ name: slice.metadata?.name ?? '' });
    s.client.close();
    await s.ns.remove();
  });

  it('publishes the devices of this node’s DeviceSlices, and follows them when a slice changes', async () => {
    const { ns, custom, resource } = await setup();
    const deviceSlice = (name: string, forNode: string, ids: string[]) => ({
      apiVersion: 'edgebridge.io/v1alpha1',
      kind: 'DeviceSlice',
      metadata: {
        name,
        labels: { 'edgebridge.io/node': forNode, 'edgebridge.io/discovery': 'sticks' },
      },
      spec: {
        node: forNode,
        discovery: 'sticks',
        shared: false,
        deviceCount: ids.length,
        devices: ids.map((id) => ({ id, properties: { USB_VENDOR_ID: '1d6b', USB_SERIAL: id } })),
      },
    });
    const create = (body: object) =>
      custom.createNamespacedCustomObject({
        group: 'edgebridge.io',
        version: 'v1alpha1',
        namespace: ns.name,
        plural: 'deviceslices',
        body,
      });
    await create(deviceSlice('mine', node, ['SER1', 'SER2']));
    await create(deviceSlice('theirs', `${node}-other`, ['SER3']));
    const names = async () =>
      (await resource.listResourceSlice({ fieldSelector: `spec.nodeName=${node}` })).items
        .flatMap((s) => s.spec.devices ?? [])
        .map((d) => d.name)
        .sort();
    const expected = (ids: string[]) =>
      ids.map((id) => draDeviceName(ns.name, deviceName('sticks', id, false, node))).sort();
    await eventually('the two devices to be published', async () =>
      JSON.stringify(await names()) === JSON.stringify(expected(['SER1', 'SER2']))
        ? true
        : undefined,
    );
    await custom.replaceNamespacedCustomObject({
      group: 'edgebridge.io',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'deviceslices',
      name: 'mine',
      body: {
        ...deviceSlice('mine', node, ['SER2']),
        metadata: {
          ...deviceSlice('mine', node, ['SER2']).metadata,
          resourceVersion: (
            (await custom.getNamespacedCustomObject({
              group: 'edgebridge.io',
              version: 'v1alpha1',
              namespace: ns.name,
              plural: 'deviceslices',
              name: 'mine',
            })) as { metadata: { resourceVersion: string } }
          ).metadata.resourceVersion,
        },
      },
    });
    await eventually('SER1 to leave the pool', async () =>
      JSON.stringify(await names()) === JSON.stringify(expected(['SER2'])) ? true : undefined,
    );
  });
});
