// `edgebridge controller` against the real API server: DeviceSlices written as
// the agents write them (labels, owner references), folded into Devices and
// Discovery status. Each test has its namespace and its own Node names; one
// controller serves the file, with a short node grace period and resync.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { deviceName, sliceName } from '../../src/api/names.ts';
import {
  API_VERSION,
  GROUP,
  LABEL_DISCOVERY,
  LABEL_NODE,
  VERSION,
  type Condition,
  type Device,
  type DeviceSlice,
  type Discovery,
  type OwnerReference,
  type SliceDevice,
} from '../../src/api/types.ts';
import { ControlPlane, type ControlPlaneInfo } from '../harness/control-plane.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually } from '../harness/devices.ts';
import {
  createReadyNode,
  kubeConfigFor,
  testNamespace,
  privateControlPlane,
} from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';

const GRACE = '2s';
const RESYNC = '3s';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const slicesKind = { group: GROUP, version: VERSION, plural: 'deviceslices' };
const devicesKind = { group: GROUP, version: VERSION, plural: 'devices' };

let controller: ControllerProcess | undefined;
// Its own control plane: this file's controller reconciles every namespace,
// with a short node grace period, and would write other files' Devices.
let controlPlane: ControlPlane | undefined;
const setup = lazy(async () => {
  const own = await privateControlPlane('controller-test');
  controlPlane = own.controlPlane;
  const info = own.info;
  await installCrds(info);
  await installControllerRbac(info);
  controller = await startController(info, {
    extraArgs: [`--node-grace-period=${GRACE}`, `--resync-period=${RESYNC}`],
  });
  return info;
});
/** The file's controller, once setup() started it. */
function running(): ControllerProcess {
  if (controller === undefined) throw new Error('the controller is not running');
  return controller;
}
const nodesMade: string[] = [];
after(async () => {
  await controller?.stop();
  const info = await settled(setup());
  if (info === undefined) return;
  const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
  await Promise.all(nodesMade.map((name) => core.deleteNode({ name }).catch(() => undefined)));
  await controlPlane?.stop();
});

/** A namespace, a Discovery in it, and helpers to write slices as each node's agent would. */
async function scene(
  info: ControlPlaneInfo,
  prefix: string,
  handler: 'simulated' | 'usb' = 'simulated',
) {
  const ns = await testNamespace(info, prefix);
  after(ns.remove);
  const kc = kubeConfigFor(info, 'admin');
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const objects = edgeObjects(info, ns.name);
  const discovery = await objects.createDiscovery('cams', {
    handler: { name: handler, details: {} },
  });
  const suffix = randomBytes(2).toString('hex');
  const shared = handler !== 'usb';
  return {
    ns: ns.name,
    custom,
    core,
    objects,
    discovery,
    /** A Node object named `<name>-<suffix>`, Ready. */
    async node(name: string): Promise<{ name: string; uid: string }> {
      const full = `${prefix}-${name}-${suffix}`;
      nodesMade.push(full);
      const n = await createReadyNode(info, full);
      return { name: full, uid: n.metadata?.uid ?? '' };
    },
    /** Creates or replaces a node's first slice with these devices (and conditions). */
    async putSlice(
      node: { name: string; uid?: string },
      devices: SliceDevice[],
      conditions?: Condition[],
    ): Promise<void> {
      const owners: OwnerReference[] = [
        {
          apiVersion: API_VERSION,
          kind: 'Discovery',
          name: 'cams',
          uid: discovery.metadata.uid ?? '',
          controller: true,
        },
      ];
      if (node.uid !== undefined)
        owners.push({ apiVersion: 'v1', kind: 'Node', name: node.name, uid: node.uid });
      const name = sliceName('cams', node.name, 0);
      const body: DeviceSlice = {
        apiVersion: API_VERSION,
        kind: 'DeviceSlice',
        metadata: {
          name,
          namespace: ns.name,
          labels: { [LABEL_NODE]: node.name, [LABEL_DISCOVERY]: 'cams' },
          ownerReferences: owners,
        },
        spec: {
          node: node.name,
          discovery: 'cams',
          shared,
          devices,
          deviceCount: devices.length,
          ...(conditions !== undefined ? { conditions } : {}),
        },
      };
      try {
        const old = (await custom.getNamespacedCustomObject({
          ...slicesKind,
          namespace: ns.name,
          name,
        })) as DeviceSlice;
        body.metadata.resourceVersion = old.metadata.resourceVersion ?? '';
        await custom.replaceNamespacedCustomObject({
          ...slicesKind,
          namespace: ns.name,
          name,
          body,
        });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
        await custom.createNamespacedCustomObject({ ...slicesKind, namespace: ns.name, body });
      }
    },
    async deleteSlice(node: { name: string }): Promise<void> {
      await custom.deleteNamespacedCustomObject({
        ...slicesKind,
        namespace: ns.name,
        name: sliceName('cams', node.name, 0),
      });
    },
    async slices(): Promise<DeviceSlice[]> {
      const list = (await custom.listNamespacedCustomObject({
        ...slicesKind,
        namespace: ns.name,
      })) as { items: DeviceSlice[] };
      return list.items;
    },
    /** The Devices, by spec.id (local devices: id@node), with their nodes' names. */
    async view(): Promise<Record<string, string[]>> {
      const out: Record<string, string[]> = {};
      for (const d of await objects.devices('cams')) {
        const nodes = (d.status?.nodes ?? []).map((n) => n.name);
        out[d.spec.shared ? d.spec.id : `${d.spec.id}@${nodes.join(',')}`] = nodes;
      }
      // Sorted, so that JSON comparisons do not depend on the API server's order.
      return Object.fromEntries(Object.entries(out).sort(([x], [y]) => (x < y ? -1 : 1)));
    },
    async device(id: string): Promise<Device | undefined> {
      const name = deviceName('cams', id, true, '');
      try {
        return (await custom.getNamespacedCustomObject({
          ...devicesKind,
          namespace: ns.name,
          name,
        })) as Device;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    },
    async status(): Promise<Discovery['status']> {
      return (await objects.getDiscovery('cams')).status;
    },
  };
}

type Scene = Awaited<ReturnType<typeof scene>>;

/** Waits until the Devices are `want` (id -> node names). */
async function devicesAre(s: Scene, want: Record<string, string[]>, what: string): Promise<void> {
  let last: Record<string, string[]> = {};
  await eventually(
    `${what}: Devices ${JSON.stringify(want)}`,
    async () => {
      last = await s.view();
      return JSON.stringify(last) === JSON.stringify(want) ? true : undefined;
    },
    30000,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last seen ${JSON.stringify(last)}`);
  });
}

function condition(status: Discovery['status'], type: string): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** Every Device's and the Discovery's resource version, to tell whether anything was written. */
async function versions(s: Scene): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const d of await s.objects.devices('cams'))
    out[d.metadata.name] = d.metadata.resourceVersion ?? '';
  out['discovery/cams'] = (await s.objects.getDiscovery('cams')).metadata.resourceVersion ?? '';
  return out;
}

/** Waits until the controller has logged `n` more resyncs than it had, and its queue is empty. */
async function resyncsPass(c: ControllerProcess, n: number): Promise<void> {
  const count = (): number => c.logLines().filter((l) => String(l.msg).startsWith('resync')).length;
  const start = count();
  await eventually(`${n} resyncs of the controller`, () =>
    Promise.resolve(count() >= start + n ? true : undefined),
  );
  await eventually('the controller queue to drain', async () => {
    const { body } = await c.get('/metrics');
    return /edgebridge_workqueue_depth\{name="controller"\} 0\b/.test(body) ? true : undefined;
  });
}

const cam = (id: string, ip = '192.0.2.1'): SliceDevice => ({
  id,
  properties: { URL: `http://${ip}/${id}` },
});

describe('edgebridge controller: DeviceSlices -> Devices and Discovery status', () => {
  it('two and three nodes share devices; a node leaving drops only its entries', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-share');
    const [a, b, c] = [await s.node('a'), await s.node('b'), await s.node('c')];
    await s.putSlice(a, [cam('cam-1'), cam('cam-2')]);
    await s.putSlice(b, [cam('cam-1'), cam('cam-2')]);
    await devicesAre(s, { 'cam-1': [a.name, b.name], 'cam-2': [a.name, b.name] }, 'two nodes');
    await s.putSlice(c, [cam('cam-1')]);
    await devicesAre(
      s,
      { 'cam-1': [a.name, b.name, c.name], 'cam-2': [a.name, b.name] },
      'three nodes',
    );
    const dev = await s.device('cam-1');
    assert.deepEqual(dev?.spec.properties, { URL: 'http://192.0.2.1/cam-1' });
    assert.deepEqual(
      dev?.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]),
      [['Discovery', 'cams', s.discovery.metadata.uid, true]],
    );
    assert.equal(dev?.status?.topics?.data, `edgebridge/v1/${s.ns}/${dev?.metadata.name}/data`);
    await eventually('status: 2 devices from 3 nodes', async () => {
      const st = await s.status();
      const c1 = condition(st, 'NodesReporting');
      return st?.devices === 2 && c1?.status === 'True' && c1.message.startsWith('3 nodes')
        ? true
        : undefined;
    });

    await s.deleteSlice(c);
    await devicesAre(s, { 'cam-1': [a.name, b.name], 'cam-2': [a.name, b.name] }, 'c left');
    await s.putSlice(a, [cam('cam-1')]);
    await s.putSlice(b, [cam('cam-1')]);
    await devicesAre(s, { 'cam-1': [a.name, b.name] }, 'cam-2 listed by no slice');
    await eventually('status: 1 device', async () =>
      (await s.status())?.devices === 1 ? true : undefined,
    );
  });

  it("local devices: one Device per node, with that node's device files", async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-local', 'usb');
    const [a, b] = [await s.node('a'), await s.node('b')];
    const usb = (node: string): SliceDevice => ({
      id: '1-1',
      properties: { USB_VENDOR_ID: '1234' },
      deviceNodes: [{ hostPath: `/dev/bus/usb/001/00${node === a.name ? 2 : 3}` }],
    });
    await s.putSlice(a, [usb(a.name)]);
    await s.putSlice(b, [usb(b.name)]);
    await devicesAre(s, { [`1-1@${a.name}`]: [a.name], [`1-1@${b.name}`]: [b.name] }, 'local');
    const devices = await s.objects.devices('cams');
    const ofA = devices.find((d) => d.metadata.name === deviceName('cams', '1-1', false, a.name));
    assert.deepEqual(ofA?.status?.nodes, [
      { name: a.name, deviceNodes: [{ hostPath: '/dev/bus/usb/001/002' }] },
    ]);
    assert.equal(ofA?.spec.shared, false);
  });

  it('nodes that disagree on a shared device: the majority view, and a SpecConflict condition', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-conflict');
    const [a, b, c] = [await s.node('a'), await s.node('b'), await s.node('c')];
    await s.putSlice(a, [cam('cam-1', '192.0.2.1')]);
    await s.putSlice(b, [cam('cam-1', '192.0.2.1')]);
    await s.putSlice(c, [cam('cam-1', '192.0.2.9')]);
    await devicesAre(s, { 'cam-1': [a.name, b.name, c.name] }, 'three views');
    const st = await eventually('a SpecConflict condition', async () => {
      const got = await s.status();
      return condition(got, 'SpecConflict')?.status === 'True' ? got : undefined;
    });
    const message = condition(st, 'SpecConflict')?.message ?? '';
    assert.match(message, new RegExp(`not that of ${c.name}`));
    assert.match(message, /properties\.URL/);
    assert.equal((await s.device('cam-1'))?.spec.properties?.URL, 'http://192.0.2.1/cam-1');
    // No write war: the Device stays as it is across resyncs.
    const before = await versions(s);
    await resyncsPass(running(), 2);
    assert.deepEqual(await versions(s), before);
    // The disagreeing node comes round: the condition clears.
    await s.putSlice(c, [cam('cam-1', '192.0.2.1')]);
    await eventually('SpecConflict False', async () =>
      condition(await s.status(), 'SpecConflict')?.status === 'False' ? true : undefined,
    );
  });

  it("the nodes' own conditions are aggregated into the Discovery's", async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-cond');
    const [a, b] = [await s.node('a'), await s.node('b')];
    const now = new Date().toISOString();
    const valid = (ok: boolean): Condition => ({
      type: 'DetailsValid',
      status: ok ? 'True' : 'False',
      reason: ok ? 'Valid' : 'InvalidDetails',
      message: ok ? 'details are valid' : 'details.port must be a number',
      lastTransitionTime: now,
    });
    await s.putSlice(a, [], [valid(true)]);
    await s.putSlice(b, [], [valid(false)]);
    const st = await eventually('DetailsValid False', async () => {
      const got = await s.status();
      return condition(got, 'DetailsValid')?.status === 'False' ? got : undefined;
    });
    assert.equal(condition(st, 'DetailsValid')?.reason, 'InvalidDetails');
    assert.equal(
      condition(st, 'DetailsValid')?.message,
      `on node ${b.name}: details.port must be a number`,
    );
    await s.putSlice(b, [], [valid(true)]);
    await eventually('DetailsValid True', async () =>
      condition(await s.status(), 'DetailsValid')?.status === 'True' ? true : undefined,
    );
  });

  it('a hand-deleted or hand-edited Device is put back; status.usage is kept', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-restore');
    const a = await s.node('a');
    await s.putSlice(a, [cam('cam-1')]);
    await devicesAre(s, { 'cam-1': [a.name] }, 'first');
    const name = deviceName('cams', 'cam-1', true, '');
    await s.custom.deleteNamespacedCustomObject({ ...devicesKind, namespace: s.ns, name });
    await devicesAre(s, { 'cam-1': [a.name] }, 'restored after deletion');

    await s.custom.patchNamespacedCustomObject(
      { ...devicesKind, namespace: s.ns, name, body: { spec: { properties: { URL: 'x' } } } },
      mergePatch,
    );
    await eventually('the hand edit undone', async () =>
      (await s.device('cam-1'))?.spec.properties?.URL === 'http://192.0.2.1/cam-1'
        ? true
        : undefined,
    );

    // A device plugin's usage survives the controller's next status write.
    await s.custom.patchNamespacedCustomObjectStatus(
      {
        ...devicesKind,
        namespace: s.ns,
        name,
        body: { status: { usage: { 'slot-0': 'ns/pod' } } },
      },
      mergePatch,
    );
    const b = await s.node('b');
    await s.putSlice(b, [cam('cam-1')]);
    await devicesAre(s, { 'cam-1': [a.name, b.name] }, 'b joins');
    assert.deepEqual((await s.device('cam-1'))?.status?.usage, { 'slot-0': 'ns/pod' });
  });

  it('a Node NotReady past the grace period leaves the Devices, and comes back when Ready', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-notready');
    const [a, b] = [await s.node('a'), await s.node('b')];
    await s.putSlice(a, [cam('cam-1')]);
    await s.putSlice(b, [cam('cam-1'), cam('cam-2')]);
    await devicesAre(s, { 'cam-1': [a.name, b.name], 'cam-2': [b.name] }, 'both ready');
    const setReady = async (ready: boolean): Promise<void> => {
      const node = await s.core.readNode({ name: b.name });
      const when = new Date();
      node.status ??= {};
      node.status.conditions = [
        {
          type: 'Ready',
          status: ready ? 'True' : 'False',
          reason: ready ? 'KubeletReady' : 'KubeletNotReady',
          message: 'edgebridge test',
          lastHeartbeatTime: when,
          lastTransitionTime: when,
        },
      ];
      await s.core.replaceNodeStatus({ name: b.name, body: node });
    };
    await setReady(false);
    await devicesAre(s, { 'cam-1': [a.name] }, 'b NotReady past the grace period');
    const st = await s.status();
    assert.match(condition(st, 'NodesReporting')?.message ?? '', new RegExp(`NotReady.*${b.name}`));
    // Its slice stays: it comes back without rediscovery.
    assert.equal((await s.slices()).length, 2);
    await setReady(true);
    await devicesAre(s, { 'cam-1': [a.name, b.name], 'cam-2': [b.name] }, 'b Ready again');
  });

  it('a Node deleted: its slices and its entries go', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-nodedel');
    const [a, b] = [await s.node('a'), await s.node('b')];
    await s.putSlice(a, [cam('cam-1')]);
    await s.putSlice(b, [cam('cam-1'), cam('cam-2')]);
    await devicesAre(s, { 'cam-1': [a.name, b.name], 'cam-2': [b.name] }, 'both');
    await s.core.deleteNode({ name: b.name });
    await devicesAre(s, { 'cam-1': [a.name] }, 'b deleted');
    await eventually("b's slice deleted", async () => {
      const left = (await s.slices()).map((x) => x.spec.node);
      return left.length === 1 && left[0] === a.name ? true : undefined;
    });
  });

  it('a node without a Node object (no kubelet) counts as ready', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-nonode');
    await s.putSlice({ name: 'standalone-host' }, [cam('cam-1')]);
    await devicesAre(s, { 'cam-1': ['standalone-host'] }, 'a node without Node object');
  });

  it('a Discovery deleted: its Devices go', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-discdel');
    const a = await s.node('a');
    await s.putSlice(a, [cam('cam-1'), cam('cam-2')]);
    await devicesAre(s, { 'cam-1': [a.name], 'cam-2': [a.name] }, 'two');
    // No garbage collector runs here: the controller itself removes them.
    await s.objects.deleteDiscovery('cams');
    await devicesAre(s, {}, 'discovery deleted');
  });

  it('many nodes reporting the same devices one after another: about one node-list write per Device, not one per node', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-many');
    const nodes = await Promise.all(Array.from({ length: 12 }, (_, i) => s.node(`n${i}`)));
    const cams = [cam('cam-1'), cam('cam-2'), cam('cam-3')];
    // One after another, as a fleet's agents finish their scans: moments apart.
    for (const n of nodes) await s.putSlice(n, cams);
    const names = nodes.map((n) => n.name).sort();
    await devicesAre(s, { 'cam-1': names, 'cam-2': names, 'cam-3': names }, 'every node');
    const statusWrites = running()
      .logLines()
      .filter((l) => l.msg === 'device nodes written' && String(l.device).startsWith(`${s.ns}/`));
    // The Discovery settles until its slices stop changing, then each Device's
    // nodes are written once (again only for a slice that straggled past the quiet).
    assert.ok(
      statusWrites.length <= 2 * cams.length,
      `${statusWrites.length} node-list writes for ${cams.length} Devices of ${nodes.length} nodes`,
    );
  });

  it('steady state writes nothing over resyncs, and a restarted controller writes nothing', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-steady');
    const [a, b] = [await s.node('a'), await s.node('b')];
    const usb = { hostPath: '/dev/video0' };
    await s.putSlice(a, [{ ...cam('cam-1'), deviceNodes: [usb] }, cam('cam-2')]);
    await s.putSlice(b, [cam('cam-1')]);
    await devicesAre(s, { 'cam-1': [a.name, b.name], 'cam-2': [a.name] }, 'converged');
    await eventually('status written', async () =>
      (await s.status())?.devices === 2 ? true : undefined,
    );
    const before = await versions(s);
    await resyncsPass(running(), 2);
    assert.deepEqual(await versions(s), before, 'a resync wrote something');

    await controller?.stop();
    controller = await startController(info, {
      name: 'controller-restarted',
      extraArgs: [`--node-grace-period=${GRACE}`, `--resync-period=${RESYNC}`],
    });
    await resyncsPass(controller, 2);
    assert.deepEqual(await versions(s), before, 'the restarted controller wrote something');
    const writes = controller
      .logLines()
      .filter((l) =>
        /^device (created|updated|deleted)|discovery status written/.test(String(l.msg)),
      )
      .filter((l) => String(l.device ?? l.discovery).startsWith(`${s.ns}/`));
    assert.deepEqual(writes, []);
  });

  it('the API server stopped and started again: the controller writes nothing', async () => {
    const info = await setup();
    const s = await scene(info, 'ctl-apidown');
    const [a, b] = [await s.node('a'), await s.node('b')];
    await s.putSlice(a, [cam('cam-1'), cam('cam-2')]);
    await s.putSlice(b, [cam('cam-1')]);
    await devicesAre(s, { 'cam-1': [a.name, b.name], 'cam-2': [a.name] }, 'converged');
    await eventually('status written', async () =>
      (await s.status())?.devices === 2 ? true : undefined,
    );
    const before = await versions(s);
    const failures = (): number =>
      running()
        .logLines()
        .filter((l) => String(l.msg).includes('failed; retrying')).length;
    const failed = failures();
    await controlPlane?.stopApiServer();
    try {
      await eventually('the controller to see the API server gone', () =>
        Promise.resolve(failures() > failed ? true : undefined),
      );
    } finally {
      await controlPlane?.startApiServer();
    }
    await resyncsPass(running(), 2);
    assert.deepEqual(await versions(s), before);
  });

  it('two replicas with --leader-elect: one writes; the leader killed, the other takes over', async () => {
    const info = await setup();
    // The file's controller (no election) would write too: this test has only the two replicas.
    await controller?.stop();
    const s = await scene(info, 'ctl-failover');
    const a = await s.node('a');
    const lease = `edgebridge-controller-test-${randomBytes(2).toString('hex')}`;
    const args = ['--leader-elect', `--leader-elect-lease=${lease}`, `--resync-period=${RESYNC}`];
    const replicas = [
      await startController(info, { name: 'replica-1', extraArgs: args }),
      await startController(info, { name: 'replica-2', extraArgs: args }),
    ];
    after(() => Promise.all(replicas.map((r) => r.stop())));
    const leading = async (r: ControllerProcess): Promise<boolean> =>
      /edgebridge_controller_is_leader\{[^}]*\} 1\b/.test((await r.get('/metrics')).body);
    const leader = await eventually('one replica to lead', async () => {
      const states = await Promise.all(replicas.map(leading));
      return states.filter(Boolean).length === 1 ? replicas[states.indexOf(true)] : undefined;
    });
    const other = replicas.find((r) => r !== leader);
    assert.ok(other !== undefined && !(await leading(other)));
    await s.putSlice(a, [cam('cam-1')]);
    await devicesAre(s, { 'cam-1': [a.name] }, 'the leader folds');
    const created = (r: ControllerProcess): number =>
      r
        .logLines()
        .filter((l) => l.msg === 'device created' && String(l.device).startsWith(`${s.ns}/`))
        .length;
    assert.equal(created(other), 0, 'the standby wrote');

    leader.process.signal('SIGKILL');
    await eventually('the other replica to lead', async () =>
      (await leading(other)) ? true : undefined,
    );
    await s.putSlice(a, [cam('cam-1'), cam('cam-2')]);
    await devicesAre(s, { 'cam-1': [a.name], 'cam-2': [a.name] }, 'the new leader folds');
    // It took over the Devices as they were: cam-1 was not written again.
    assert.equal(created(other), 1);
  });
});
