// The kubelet device plugin against a kubelet-side peer (Registration,
// pod-resources and a plugin client, over Unix sockets) and the real API
// server, where shared devices' slot claims are written.
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { pino } from 'pino';
import { deviceName } from '../../src/api/names.ts';
import { API_VERSION, type Device } from '../../src/api/types.ts';
import { DevicePlugin, type VisibleDevice } from '../../src/deviceplugin/device-plugin.ts';
import { KubeDeviceStore } from '../../src/deviceplugin/device-store.ts';
import { resourceName, slotId, socketName } from '../../src/deviceplugin/resource-names.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { installCrds } from '../harness/crds.ts';
import { kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import { KubeletPeer } from '../peers/fixtures/kubelet/kubelet-peer.ts';

const G = { group: 'edgebridge.io', version: 'v1alpha1' };
const BROKER = 'mqtt://192.0.2.10:1883';
/** A test that waits for something that never comes fails instead of hanging the run. */
const LIMIT = { timeout: 60_000 };

describe('the kubelet device plugin', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installAgentRbac(info);
    const ns = await testNamespace(info, 'device-plugin');
    const custom = kubeConfigFor(info, 'admin').makeApiClient(CustomObjectsApi);
    // The plugin writes claims as the agent does: with the agent's low-privilege token.
    const client = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.agent]));
    return { ns, custom, client, store: new KubeDeviceStore(client) };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    s.client.close();
    await s.ns.remove();
  });

  let serial = 0;
  /** Creates a Device as the controller would, and returns how the agent of `node` sees it. */
  async function createDevice(spec: {
    discovery: string;
    shared: boolean;
    capacity: number;
    node: string;
    properties?: Record<string, string>;
    deviceNodes?: VisibleDevice['deviceNodes'];
  }): Promise<VisibleDevice> {
    const { ns, custom } = await setup();
    const id = `dev-${++serial}-${Date.now()}`;
    const name = deviceName(spec.discovery, id, spec.shared, spec.node);
    const device: Device = {
      apiVersion: API_VERSION,
      kind: 'Device',
      metadata: { name, labels: { 'edgebridge.io/discovery': spec.discovery } },
      spec: {
        discovery: spec.discovery,
        handler: spec.shared ? 'onvif' : 'usb',
        shared: spec.shared,
        id,
        capacity: spec.capacity,
        properties: spec.properties ?? {},
      },
    };
    await custom.createNamespacedCustomObject({
      ...G,
      namespace: ns.name,
      plural: 'devices',
      body: device,
    });
    return {
      namespace: ns.name,
      name,
      discovery: spec.discovery,
      capacity: spec.capacity,
      properties: spec.properties ?? {},
      ...(spec.deviceNodes ? { deviceNodes: spec.deviceNodes } : {}),
    };
  }

  async function usage(device: VisibleDevice): Promise<Record<string, string>> {
    const { custom } = await setup();
    const d = (await custom.getNamespacedCustomObject({
      ...G,
      namespace: device.namespace,
      plural: 'devices',
      name: device.name,
    })) as Device;
    return d.status?.usage ?? {};
  }

  /** A node: a kubelet peer in a directory of its own, and the plugin under test. */
  async function startNode(t: TestContext, node: string, opts: { reclaimGraceMs?: number } = {}) {
    const { store } = await setup();
    // Short: a Unix socket path has at most 107 bytes.
    const base = mkdtempSync(path.join(tmpdir(), 'dp-'));
    const dir = path.join(base, 'dp');
    mkdirSync(dir);
    t.after(() => rmSync(base, { recursive: true, force: true }));
    const kubelet = await KubeletPeer.start(dir, path.join(base, 'pr.sock'));
    t.after(() => kubelet.close());
    const plugin = await DevicePlugin.start({
      dir,
      node,
      store,
      brokerUrl: BROKER,
      log: pino({ level: 'silent' }),
      podResourcesSocket: kubelet.podResourcesSocket,
      // The test calls resync() itself.
      resyncMs: 3_600_000,
      reclaimGraceMs: opts.reclaimGraceMs ?? 3_600_000,
    });
    t.after(() => plugin.close());
    return { dir, kubelet, plugin };
  }

  it(
    'registers a resource per Device and per Discovery, each on its own socket',
    LIMIT,
    async (t) => {
      const cam = await createDevice({
        discovery: 'reg-cams',
        shared: true,
        capacity: 2,
        node: 'n1',
      });
      const { kubelet, plugin } = await startNode(t, 'n1');
      plugin.update([cam]);
      const [byDevice] = await kubelet.registered(resourceName(cam.name));
      const [byDiscovery] = await kubelet.registered('edgebridge.io/reg-cams');
      assert.deepEqual(byDevice, {
        version: 'v1beta1',
        endpoint: socketName(resourceName(cam.name)),
        resourceName: resourceName(cam.name),
        options: { preStartRequired: false, getPreferredAllocationAvailable: true },
      });
      assert.equal(byDiscovery?.endpoint, 'edgebridge-reg-cams.sock');
      const client = await kubelet.plugin(resourceName(cam.name));
      assert.deepEqual(await client.options(), {
        preStartRequired: false,
        getPreferredAllocationAvailable: true,
      });
      const list = await client.watch().until((l) => l.length > 0);
      assert.deepEqual(list, [
        { ID: slotId(cam.name, 0), health: 'Healthy', topology: null },
        { ID: slotId(cam.name, 1), health: 'Healthy', topology: null },
      ]);
    },
  );

  it('registers again, on fresh sockets, when the kubelet restarts', LIMIT, async (t) => {
    const cam = await createDevice({
      discovery: 'restart-cams',
      shared: true,
      capacity: 1,
      node: 'n1',
    });
    const { kubelet, plugin } = await startNode(t, 'n1');
    plugin.update([cam]);
    await kubelet.registered('edgebridge.io/restart-cams');
    await kubelet.restart();
    await kubelet.registered('edgebridge.io/restart-cams', 2);
    await kubelet.registered(resourceName(cam.name), 2);
    // The restart removed the plugin's socket: answering now means it listens again.
    const client = await kubelet.plugin('edgebridge.io/restart-cams');
    const list = await client.watch().until((l) => l.length === 1);
    assert.equal(list[0]?.health, 'Healthy');
  });

  it('sends ListAndWatch a new list as devices come and go', LIMIT, async (t) => {
    const a = await createDevice({ discovery: 'law-cams', shared: true, capacity: 1, node: 'n1' });
    const b = await createDevice({ discovery: 'law-cams', shared: true, capacity: 1, node: 'n1' });
    const { kubelet, plugin } = await startNode(t, 'n1');
    plugin.update([a]);
    const any = (await kubelet.plugin('edgebridge.io/law-cams')).watch();
    const only = (await kubelet.plugin(resourceName(a.name))).watch();
    const ids = (l: { ID: string }[]) =>
      l
        .map((d) => d.ID)
        .sort()
        .join(',');
    await any.until((l) => ids(l) === slotId(a.name, 0));
    plugin.update([a, b]);
    await any.until((l) => ids(l) === [slotId(a.name, 0), slotId(b.name, 0)].sort().join(','));
    plugin.update([b]);
    await any.until((l) => ids(l) === slotId(b.name, 0));
    // The device's own resource turns Unhealthy before its socket goes.
    const last = await only.until((l) => l.every((d) => d.health === 'Unhealthy'));
    assert.equal(ids(last), slotId(a.name, 0));
  });

  it(
    'allocates with env, device nodes and mounts, and records the claim on the Device',
    LIMIT,
    async (t) => {
      const usb = await createDevice({
        discovery: 'alloc-usb',
        shared: false,
        capacity: 2,
        node: 'n1',
        properties: { USB_VENDOR_ID: '1d6b', USB_PRODUCT_ID: '0002' },
        deviceNodes: [{ hostPath: '/dev/bus/usb/001/002' }],
      });
      const withMount = {
        ...usb,
        mounts: [{ hostPath: '/run/udev', containerPath: '/run/udev', readOnly: true }],
      };
      const { kubelet, plugin } = await startNode(t, 'n1');
      plugin.update([withMount]);
      const client = await kubelet.plugin(resourceName(usb.name));
      const res = await client.allocate([slotId(usb.name, 1)]);
      assert.equal(res.containerResponses.length, 1);
      const c = res.containerResponses[0];
      assert.deepEqual(c?.envs, {
        EDGEBRIDGE_BROKER_URL: BROKER,
        EDGEBRIDGE_DEVICES: usb.name,
        EDGEBRIDGE_DEVICE: usb.name,
        EDGEBRIDGE_DEVICE_NAMESPACE: usb.namespace,
        EDGEBRIDGE_TOPIC_PREFIX: `edgebridge/v1/${usb.namespace}/${usb.name}`,
        USB_VENDOR_ID: '1d6b',
        USB_PRODUCT_ID: '0002',
      });
      assert.deepEqual(c?.devices, [
        {
          hostPath: '/dev/bus/usb/001/002',
          containerPath: '/dev/bus/usb/001/002',
          permissions: 'rw',
        },
      ]);
      assert.deepEqual(c?.mounts, [
        { hostPath: '/run/udev', containerPath: '/run/udev', readOnly: true },
      ]);
      assert.deepEqual(await usage(usb), { '1': `n1:${resourceName(usb.name)}` });
      // Asked to choose, the plugin prefers the slot nobody holds.
      const preferred = await client.preferred([slotId(usb.name, 1), slotId(usb.name, 0)], 1);
      assert.deepEqual(preferred.containerResponses[0]?.deviceIDs, [slotId(usb.name, 0)]);
      // The same slot through the Discovery's resource is now taken on this node too.
      const any = (await kubelet.plugin('edgebridge.io/alloc-usb')).watch();
      const list = await any.until((l) => l.length === 2);
      assert.deepEqual(
        list.map((d) => [d.ID, d.health]),
        [
          [slotId(usb.name, 0), 'Healthy'],
          [slotId(usb.name, 1), 'Unhealthy'],
        ],
      );
    },
  );

  it('grants the one slot of a shared device to exactly one of two nodes', LIMIT, async (t) => {
    const nodes = ['node-a', 'node-b'];
    const cam = await createDevice({
      discovery: 'race-cams',
      shared: true,
      capacity: 1,
      node: 'x',
    });
    const started = await Promise.all(nodes.map((n) => startNode(t, n)));
    for (const { plugin } of started) plugin.update([cam]);
    const clients = await Promise.all(
      started.map(({ kubelet }) => kubelet.plugin(resourceName(cam.name))),
    );
    const results = await Promise.allSettled(clients.map((c) => c.allocate([slotId(cam.name, 0)])));
    const granted = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    assert.equal(granted.length, 1, 'exactly one grant');
    assert.equal(refused.length, 1);
    assert.equal((refused[0]?.reason as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
    assert.match((refused[0]?.reason as Error).message, /slot 0 of Device .* is taken/);
    const winner = nodes[results.findIndex((r) => r.status === 'fulfilled')];
    const loser = results.findIndex((r) => r.status === 'rejected');
    assert.deepEqual(await usage(cam), { '0': `${winner}:${resourceName(cam.name)}` });
    // The loser's kubelet is told that the slot is not to be had.
    const watch = clients[loser]?.watch();
    await watch?.until((l) => l[0]?.health === 'Unhealthy');
  });

  it('reclaims a claim no pod holds, and names the pod that holds one', LIMIT, async (t) => {
    const cam = await createDevice({ discovery: 'gc-cams', shared: true, capacity: 2, node: 'x' });
    const { kubelet, plugin } = await startNode(t, 'n1', { reclaimGraceMs: 0 });
    plugin.update([cam]);
    const client = await kubelet.plugin(resourceName(cam.name));
    await client.allocate([slotId(cam.name, 0)], [slotId(cam.name, 1)]);
    const r = resourceName(cam.name);
    assert.deepEqual(await usage(cam), { '0': `n1:${r}`, '1': `n1:${r}` });
    kubelet.podResources = [
      {
        name: 'reader',
        namespace: 'apps',
        containers: [
          { name: 'main', devices: [{ resourceName: r, deviceIds: [slotId(cam.name, 1)] }] },
        ],
      },
    ];
    await plugin.resync();
    assert.deepEqual(await usage(cam), { '1': `n1:${r}:apps/reader` });
  });

  it(
    'answers garbage, oversized frames and unknown ids with an error, and carries on',
    LIMIT,
    async (t) => {
      const cam = await createDevice({
        discovery: 'bad-cams',
        shared: true,
        capacity: 1,
        node: 'n1',
      });
      const { kubelet, plugin, dir } = await startNode(t, 'n1');
      plugin.update([cam]);
      const client = await kubelet.plugin(resourceName(cam.name));
      // Not HTTP/2 at all: the server answers with GOAWAY and hangs up.
      await new Promise<void>((resolve) => {
        const sock = connect(path.join(dir, socketName(resourceName(cam.name))));
        sock.on('connect', () => sock.write(Buffer.alloc(4096, 0xff)));
        sock.resume();
        sock.on('end', () => {
          sock.destroy();
          resolve();
        });
        sock.on('error', () => resolve());
      });
      // A well-framed request of 1 MiB, and one whose bytes are no AllocateRequest.
      const raw = new grpc.Client(`unix://${client.socket}`, grpc.credentials.createInsecure());
      t.after(() => raw.close());
      const send = (bytes: Buffer) =>
        new Promise<grpc.ServiceError>((resolve, reject) => {
          raw.makeUnaryRequest(
            '/v1beta1.DevicePlugin/Allocate',
            (b: Buffer) => b,
            (b: Buffer) => b,
            bytes,
            (err) => (err !== null ? resolve(err) : reject(new Error('accepted'))),
          );
        });
      assert.equal((await send(Buffer.alloc(1024 * 1024, 1))).code, grpc.status.RESOURCE_EXHAUSTED);
      assert.notEqual(
        (await send(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]))).code,
        grpc.status.OK,
      );
      await assert.rejects(client.allocate(['no-such-device']), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
        assert.match(err.message, /has no device "no-such-device"/);
        return true;
      });
      // Still serving, and nothing was claimed.
      const res = await client.allocate([slotId(cam.name, 0)]);
      assert.equal(res.containerResponses[0]?.envs.EDGEBRIDGE_DEVICE, cam.name);
    },
  );

  it(
    'serves the other resources when one socket path is taken by something else',
    LIMIT,
    async (t) => {
      const cam = await createDevice({
        discovery: 'blocked-cams',
        shared: true,
        capacity: 1,
        node: 'n1',
      });
      const { kubelet, plugin, dir } = await startNode(t, 'n1');
      mkdirSync(path.join(dir, socketName('edgebridge.io/blocked-cams')));
      plugin.update([cam]);
      await kubelet.registered(resourceName(cam.name));
      await plugin.idle();
      assert.equal(
        kubelet.registrations.filter((r) => r.resourceName === 'edgebridge.io/blocked-cams').length,
        0,
      );
    },
  );

  it('registers once the kubelet socket is a socket again', LIMIT, async (t) => {
    const cam = await createDevice({
      discovery: 'nosock-cams',
      shared: true,
      capacity: 1,
      node: 'n1',
    });
    const base = mkdtempSync(path.join(tmpdir(), 'dp-'));
    t.after(() => rmSync(base, { recursive: true, force: true }));
    const dir = path.join(base, 'dp');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'kubelet.sock'), 'not a socket');
    const { store } = await setup();
    const plugin = await DevicePlugin.start({
      dir,
      node: 'n1',
      store,
      brokerUrl: BROKER,
      log: pino({ level: 'silent' }),
      resyncMs: 3_600_000,
    });
    t.after(() => plugin.close());
    plugin.update([cam]);
    await plugin.idle();
    rmSync(path.join(dir, 'kubelet.sock'));
    const kubelet = await KubeletPeer.start(dir, path.join(base, 'pr.sock'));
    t.after(() => kubelet.close());
    await kubelet.registered('edgebridge.io/nosock-cams');
    await kubelet.registered(resourceName(cam.name));
  });
});
