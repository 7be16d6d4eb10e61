import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { DEVICE_PLURAL, DEVICE_SLICE_PLURAL, DISCOVERY_PLURAL } from '../../src/api/crds.ts';
import {
  API_VERSION,
  GROUP,
  LABEL_DISCOVERY,
  LABEL_NODE,
  MAX_SLICE_DEVICES,
  VERSION,
  type Device,
  type DeviceNodeStatus,
  type DeviceSlice,
  type DeviceSliceSpec,
  type DeviceSpec,
  type Discovery,
  type DiscoverySpec,
  type HandlerName,
} from '../../src/api/types.ts';
import { TEST_USERS, type ControlPlaneInfo, type TestUser } from '../harness/control-plane.ts';
import { CRD_NAMES, installCrds } from '../harness/crds.ts';
import { kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy } from '../harness/lazy.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import { scratchDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const applyPatch = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

const setup = lazy(async () => {
  const info = await useControlPlane();
  await installCrds(info);
  return info;
});

/** A namespace for one test, deleted when the test ends. */
async function namespace(t: TestContext, info: ControlPlaneInfo, prefix: string): Promise<string> {
  const ns = await testNamespace(info, prefix);
  t.after(ns.remove);
  return ns.name;
}

function objects(info: ControlPlaneInfo, user: TestUser = 'admin'): CustomObjectsApi {
  return kubeConfigFor(info, user).makeApiClient(CustomObjectsApi);
}

/** kubectl as a user would run it; a fresh discovery cache, so that new CRDs are always known. */
async function kubectl(info: ControlPlaneInfo, ...args: string[]): Promise<string> {
  const cache = scratchDir('kubectl-cache');
  const { stdout } = await run(info.kubectl, [
    '--kubeconfig',
    info.kubeconfigs.admin,
    '--cache-dir',
    cache,
    ...args,
  ]);
  return stdout;
}

/** The status code and Status message of a refused API call. */
async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body: unknown = err.body;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    try {
      return {
        code: err.code,
        message: String((JSON.parse(text) as { message?: unknown }).message),
      };
    } catch {
      return { code: err.code, message: text };
    }
  }
  assert.fail('the API server accepted the request');
}

/**
 * A Discovery that no agent runs: agents of other test files share this API
 * server and watch Discoveries in every namespace.
 */
function discovery(name: string, spec: DiscoverySpec): Discovery {
  return {
    apiVersion: API_VERSION,
    kind: 'Discovery',
    metadata: { name },
    spec: { nodeSelector: { matchLabels: { 'edgebridge.io/test-no-agent': 'true' } }, ...spec },
  };
}

function device(name: string, spec: Partial<DeviceSpec> = {}): Device {
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata: { name },
    spec: { discovery: 'cams', handler: 'simulated', shared: true, id: name, capacity: 1, ...spec },
  };
}

async function createDiscovery(info: ControlPlaneInfo, namespace: string, body: Discovery) {
  const kind = { group: GROUP, version: VERSION, plural: DISCOVERY_PLURAL };
  return (await objects(info).createNamespacedCustomObject({
    ...kind,
    namespace,
    body,
  })) as Discovery;
}

async function createDevice(info: ControlPlaneInfo, namespace: string, body: Device) {
  const kind = { group: GROUP, version: VERSION, plural: DEVICE_PLURAL };
  return (await objects(info).createNamespacedCustomObject({ ...kind, namespace, body })) as Device;
}

/** A slice of `count` devices seen by `node`, labelled as the agent labels it. */
function slice(
  name: string,
  node: string,
  count: number,
  spec: Partial<DeviceSliceSpec> = {},
): DeviceSlice {
  const devices = Array.from({ length: count }, (_, i) => ({
    id: `cam-${i}`,
    properties: { ONVIF_DEVICE_SERVICE_URL: `http://192.0.2.${i % 250}/onvif` },
  }));
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceSlice',
    metadata: { name, labels: { [LABEL_NODE]: node, [LABEL_DISCOVERY]: 'cams' } },
    spec: { node, discovery: 'cams', shared: true, devices, deviceCount: count, ...spec },
  };
}

async function createSlice(info: ControlPlaneInfo, namespace: string, body: DeviceSlice) {
  const kind = { group: GROUP, version: VERSION, plural: DEVICE_SLICE_PLURAL };
  return (await objects(info).createNamespacedCustomObject({
    ...kind,
    namespace,
    body,
  })) as DeviceSlice;
}

/** What one node's agent does: server-side-apply its own entry of status.nodes (or none). */
async function applyNodes(
  info: ControlPlaneInfo,
  namespace: string,
  name: string,
  fieldManager: string,
  nodes: DeviceNodeStatus[],
  user: TestUser = 'admin',
): Promise<Device> {
  return (await objects(info, user).patchNamespacedCustomObjectStatus(
    {
      group: GROUP,
      version: VERSION,
      plural: DEVICE_PLURAL,
      namespace,
      name,
      body: { apiVersion: API_VERSION, kind: 'Device', metadata: { name }, status: { nodes } },
      fieldManager,
      force: true,
    },
    applyPatch,
  )) as Device;
}

describe('the edgebridge CRDs', () => {
  it('are Established with their short names and category', async () => {
    const info = await setup();
    const ext = kubeConfigFor(info, 'admin').makeApiClient(ApiextensionsV1Api);
    const found = await Promise.all(
      CRD_NAMES.map((name) => ext.readCustomResourceDefinition({ name })),
    );
    for (const crd of found) {
      const established = crd.status?.conditions?.find((c) => c.type === 'Established');
      assert.equal(established?.status, 'True', crd.metadata?.name);
      assert.deepEqual(crd.spec.names.categories, ['edgebridge']);
    }
    assert.deepEqual(
      found.map((crd) => crd.spec.names.shortNames),
      [['disc'], ['dev'], ['devslice']],
    );
  });

  it('accept a valid Discovery and fill in the defaults', async (t) => {
    const info = await setup();
    const ns = await namespace(t, info, 'crd-valid');
    const created = await createDiscovery(
      info,
      ns,
      discovery('cams', {
        handler: { name: 'simulated', details: { devices: [{ id: 'cam-1' }], period: '1s' } },
        properties: [
          { name: 'user', value: 'viewer' },
          { name: 'password', valueFrom: { secretKeyRef: { name: 'cams', key: 'password' } } },
        ],
        broker: { podSpec: { containers: [{ name: 'broker', image: 'example.invalid/b:1' }] } },
      }),
    );
    assert.equal(created.spec.capacity, 1);
    assert.equal(created.spec.intervalSeconds, 30);
    assert.equal(created.spec.gracePeriodSeconds, 60);
    // Preserved as given, not pruned.
    assert.deepEqual(created.spec.handler.details, { devices: [{ id: 'cam-1' }], period: '1s' });
    assert.deepEqual(created.spec.broker?.podSpec, {
      containers: [{ name: 'broker', image: 'example.invalid/b:1' }],
    });
  });

  it('reject invalid Discoveries with a message that names the problem', async (t) => {
    const info = await setup();
    const ns = await namespace(t, info, 'crd-invalid');
    const secret = { secretKeyRef: { name: 's', key: 'k' } };
    const cases: [string, DiscoverySpec, RegExp][] = [
      [
        'both-value-and-valuefrom',
        {
          handler: { name: 'simulated' },
          properties: [{ name: 'p', value: 'v', valueFrom: secret }],
        },
        /spec\.properties\[0\].*exactly one of value and valueFrom must be set/,
      ],
      [
        'neither-value-nor-valuefrom',
        { handler: { name: 'simulated' }, properties: [{ name: 'p' }] },
        /spec\.properties\[0\].*exactly one of value and valueFrom must be set/,
      ],
      [
        'both-secret-and-configmap',
        {
          handler: { name: 'simulated' },
          properties: [
            { name: 'p', valueFrom: { ...secret, configMapKeyRef: { name: 'c', key: 'k' } } },
          ],
        },
        /exactly one of secretKeyRef and configMapKeyRef must be set/,
      ],
      [
        'duplicate-property',
        {
          handler: { name: 'simulated' },
          properties: [
            { name: 'p', value: 'a' },
            { name: 'p', value: 'b' },
          ],
        },
        /spec\.properties.*property names must be unique/,
      ],
      [
        'unknown-handler',
        { handler: { name: 'zigbee' as HandlerName } },
        /spec\.handler\.name: Unsupported value: "zigbee"/,
      ],
      [
        'capacity-zero',
        { handler: { name: 'simulated' }, capacity: 0 },
        /spec\.capacity: Invalid value: 0: .*greater than or equal to 1/,
      ],
      [
        'pod-and-job',
        { handler: { name: 'simulated' }, broker: { podSpec: {}, jobSpec: {} } },
        /spec\.broker.*at most one of podSpec and jobSpec may be set/,
      ],
    ];
    for (const [name, spec, message] of cases) {
      const { code, message: got } = await refusal(
        createDiscovery(info, ns, discovery(name, spec)),
      );
      assert.equal(code, 422, name);
      assert.match(got, message, name);
    }
  });

  it("let each node server-side-apply only its own entry of a Device's status.nodes", async (t) => {
    const info = await setup();
    const ns = await namespace(t, info, 'crd-ssa');
    await createDevice(info, ns, device('cam-1'));
    await applyNodes(info, ns, 'cam-1', 'node-a', [{ name: 'node-a' }]);
    const both = await applyNodes(info, ns, 'cam-1', 'node-b', [
      { name: 'node-b', deviceNodes: [{ hostPath: '/dev/video0', permissions: 'rw' }] },
    ]);
    assert.deepEqual(
      both.status?.nodes?.map((n) => n.name),
      ['node-a', 'node-b'],
    );
    // Each manager owns exactly its own list entry.
    const owned = (manager: string) =>
      JSON.stringify(
        (
          both.metadata as { managedFields?: { manager: string; fieldsV1?: unknown }[] }
        ).managedFields?.find((f) => f.manager === manager)?.fieldsV1,
      );
    assert.match(owned('node-a'), /k:\{\\"name\\":\\"node-a\\"\}/);
    assert.doesNotMatch(owned('node-a'), /node-b/);
    assert.match(owned('node-b'), /k:\{\\"name\\":\\"node-b\\"\}/);
    assert.doesNotMatch(owned('node-b'), /node-a/);

    const left = await applyNodes(info, ns, 'cam-1', 'node-a', []);
    assert.deepEqual(left.status?.nodes, [
      { name: 'node-b', deviceNodes: [{ hostPath: '/dev/video0', permissions: 'rw' }] },
    ]);
  });

  it('select Devices by spec.handler and spec.discovery with kubectl --field-selector', async (t) => {
    const info = await setup();
    const ns = await namespace(t, info, 'crd-fields');
    await createDevice(info, ns, device('sim-1'));
    await createDevice(info, ns, device('sim-2', { discovery: 'other' }));
    await createDevice(info, ns, device('cam-1', { discovery: 'other' }));
    const names = async (selector: string) =>
      (await kubectl(info, 'get', 'devices', '-n', ns, '--field-selector', selector, '-o', 'name'))
        .trim()
        .split('\n')
        .sort();
    assert.deepEqual(
      await names('spec.handler=simulated'),
      [
        'device.edgebridge.io/sim-1',
        'device.edgebridge.io/sim-2',
        'device.edgebridge.io/cam-1',
      ].sort(),
    );
    assert.deepEqual(await names('spec.discovery!=other,spec.handler=simulated'), [
      'device.edgebridge.io/sim-1',
    ]);
  });

  it('print handler, shared, nodes and age for kubectl get dev and get disc', async (t) => {
    const info = await setup();
    const ns = await namespace(t, info, 'crd-columns');
    await createDiscovery(info, ns, discovery('cams', { handler: { name: 'simulated' } }));
    await createDevice(info, ns, device('cam-1', { shared: true }));
    await applyNodes(info, ns, 'cam-1', 'node-a', [{ name: 'node-a' }]);
    await applyNodes(info, ns, 'cam-1', 'node-b', [{ name: 'node-b' }]);
    const rows = (out: string) =>
      out
        .trim()
        .split('\n')
        .map((line) => line.split(/\s+/));

    const devices = rows(await kubectl(info, 'get', 'dev', '-n', ns));
    assert.deepEqual(devices[0], ['NAME', 'HANDLER', 'SHARED', 'NODES', 'AGE']);
    // The API server's table shows the first match of a JSONPath column only.
    assert.deepEqual(devices[1]?.slice(0, 4), ['cam-1', 'simulated', 'true', 'node-a']);
    // What the column's description tells users to run for all nodes.
    const all = rows(
      await kubectl(
        info,
        'get',
        'devices',
        '-n',
        ns,
        '-o',
        'custom-columns=NAME:.metadata.name,NODES:.status.nodes[*].name',
      ),
    );
    assert.deepEqual(all[1], ['cam-1', 'node-a,node-b']);

    const discoveries = rows(await kubectl(info, 'get', 'disc', '-n', ns));
    assert.deepEqual(discoveries[0], ['NAME', 'HANDLER', 'DEVICES', 'AGE']);
    assert.deepEqual(discoveries[1]?.slice(0, 2), ['cams', 'simulated']);
  });

  it('accept a DeviceSlice of 128 devices and print its node, discovery and count', async (t) => {
    const info = await setup();
    const ns = await namespace(t, info, 'crd-slice');
    const created = await createSlice(
      info,
      ns,
      slice('cams-edge-1-0', 'edge-1', MAX_SLICE_DEVICES),
    );
    assert.equal(created.spec.devices.length, MAX_SLICE_DEVICES);
    const rows = (await kubectl(info, 'get', 'devslice', '-n', ns))
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/));
    assert.deepEqual(rows[0], ['NAME', 'NODE', 'DISCOVERY', 'DEVICES', 'AGE']);
    assert.deepEqual(rows[1]?.slice(0, 4), ['cams-edge-1-0', 'edge-1', 'cams', '128']);
    const selected = await kubectl(
      info,
      'get',
      'deviceslices',
      '-n',
      ns,
      '--field-selector',
      'spec.node=edge-2',
      '-o',
      'name',
    );
    assert.equal(selected.trim(), '');
  });

  it('reject invalid DeviceSlices with a message that names the problem', async (t) => {
    const info = await setup();
    const ns = await namespace(t, info, 'crd-slice-invalid');
    const twice = slice('twice', 'edge-1', 2);
    twice.spec.devices[1] = { id: 'cam-0' };
    const cases: [string, DeviceSlice, RegExp][] = [
      [
        '129 devices',
        slice('too-many', 'edge-1', MAX_SLICE_DEVICES + 1),
        /spec\.devices: Too many: 129: must have at most 128 items/,
      ],
      [
        'a bad object name',
        slice('Edge_1', 'edge-1', 1),
        /metadata\.name: Invalid value: "Edge_1"/,
      ],
      ['a bad node name', slice('bad-node', 'Edge_1', 1), /spec\.node in body should match/],
      [
        'a node name too long for a label',
        slice('long-node', 'n'.repeat(64), 1),
        /spec\.node: Too long: may not be (longer than|more than) 63/,
      ],
      [
        'a bad label key',
        slice('bad-label', 'edge-1', 1, { devices: [{ id: 'a', labels: { 'bad key': 'x' } }] }),
        /spec\.devices\[0\]\.labels.*label keys must be valid Kubernetes label keys/,
      ],
      ['a duplicate device id', twice, /spec\.devices\[1\]: Duplicate value/],
      [
        'a wrong count',
        slice('count', 'edge-1', 2, { deviceCount: 3 }),
        /deviceCount must equal the number of devices/,
      ],
    ];
    for (const [what, body, message] of cases) {
      const { code, message: got } = await refusal(createSlice(info, ns, body));
      assert.equal(code, 422, what);
      assert.match(got, message, what);
    }
  });

  it("refuse changing a DeviceSlice's node", async (t) => {
    const info = await setup();
    const ns = await namespace(t, info, 'crd-slice-node');
    await createSlice(info, ns, slice('cams-edge-1-0', 'edge-1', 1));
    const moved = objects(info).patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: DEVICE_SLICE_PLURAL,
        namespace: ns,
        name: 'cams-edge-1-0',
        body: { spec: { node: 'edge-2' } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const { code, message } = await refusal(moved);
    assert.equal(code, 422);
    assert.match(message, /node and discovery are immutable/);
  });

  it('list both kinds under the edgebridge category', async (t) => {
    const info = await setup();
    const ns = await namespace(t, info, 'crd-category');
    await createDiscovery(info, ns, discovery('cams', { handler: { name: 'simulated' } }));
    await createDevice(info, ns, device('cam-1'));
    const out = await kubectl(info, 'get', 'edgebridge', '-n', ns, '-o', 'name');
    assert.deepEqual(out.trim().split('\n').sort(), [
      'device.edgebridge.io/cam-1',
      'discovery.edgebridge.io/cams',
    ]);
  });
});

describe('the agent RBAC (manifests/rbac/)', () => {
  const rbac = lazy(async () => {
    const info = await setup();
    await installAgentRbac(info);
    return info;
  });

  it('lets the agent token list Devices and Discoveries in any namespace', async (t) => {
    const info = await rbac();
    const ns = await namespace(t, info, 'rbac-list');
    await createDiscovery(info, ns, discovery('cams', { handler: { name: 'simulated' } }));
    await createDevice(info, ns, device('cam-1'));
    const agent = objects(info, 'agent');
    const list = async (plural: string) =>
      (
        (await agent.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural,
          namespace: ns,
        })) as {
          items: { metadata: { name: string } }[];
        }
      ).items.map((item) => item.metadata.name);
    assert.deepEqual(await list(DISCOVERY_PLURAL), ['cams']);
    assert.deepEqual(await list(DEVICE_PLURAL), ['cam-1']);
  });

  it('lets the agent token write DeviceSlices, and no longer Devices (the controller writes them)', async () => {
    const info = await rbac();
    const can = async (verb: string, resource: string): Promise<string> =>
      (
        await kubectl(info, 'auth', 'can-i', verb, resource, `--as=${TEST_USERS.agent.name}`).catch(
          (err: unknown) => ({ trim: () => String((err as { stdout?: string }).stdout).trim() }),
        )
      ).trim();
    for (const verb of ['create', 'update', 'delete', 'watch'])
      assert.equal(await can(verb, 'deviceslices.edgebridge.io'), 'yes', verb);
    for (const verb of ['create', 'patch', 'delete'])
      assert.equal(await can(verb, 'devices.edgebridge.io'), 'no', verb);
    assert.equal(await can('patch', 'devices.edgebridge.io/status'), 'no');
    assert.equal(await can('patch', 'discoveries.edgebridge.io/status'), 'no');
  });

  it('lets the agent token create TokenReviews (the node broker checks pods’ tokens)', async () => {
    const info = await rbac();
    const answer = await kubectl(
      info,
      'auth',
      'can-i',
      'create',
      'tokenreviews.authentication.k8s.io',
      `--as=${TEST_USERS.agent.name}`,
    );
    assert.equal(answer.trim(), 'yes');
  });

  it('refuses the agent token listing Secrets and deleting Discoveries', async (t) => {
    const info = await rbac();
    const ns = await namespace(t, info, 'rbac-refuse');
    await createDiscovery(info, ns, discovery('cams', { handler: { name: 'simulated' } }));
    const core = kubeConfigFor(info, 'agent').makeApiClient(CoreV1Api);
    assert.equal((await refusal(core.listNamespacedSecret({ namespace: ns }))).code, 403);
    assert.equal((await refusal(core.listSecretForAllNamespaces())).code, 403);
    const deletion = objects(info, 'agent').deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: DISCOVERY_PLURAL,
      namespace: ns,
      name: 'cams',
    });
    assert.equal((await refusal(deletion)).code, 403);
  });
});

/** Server-side applies `sources` (-k DIR, -f FILE...) as a dry run; returns the objects' kind/name. */
async function applyDryRun(info: ControlPlaneInfo, sources: string[]): Promise<string[]> {
  const out = await kubectl(
    info,
    'apply',
    '--server-side',
    '--dry-run=server',
    '--field-manager=edgebridge-test',
    ...sources,
    '-o',
    'name',
  );
  return out.trim().split('\n');
}

describe('the manifests (kustomize)', () => {
  it('apply as a whole, agent DaemonSet included, in a server-side dry run', async () => {
    const info = await setup();
    // The namespace must exist for a dry run of the objects in it.
    await installAgentRbac(info);
    const manifests = path.resolve(import.meta.dirname, '..', '..', 'manifests');
    const names = await applyDryRun(info, ['-k', manifests]);
    for (const expected of [
      'daemonset.apps/edgebridge-agent',
      'configmap/edgebridge-broker',
      'clusterrole.rbac.authorization.k8s.io/edgebridge-agent',
      'customresourcedefinition.apiextensions.k8s.io/devices.edgebridge.io',
    ])
      assert.ok(names.includes(expected), `${expected} in ${names.join(', ')}`);
  });

  it('give the agent DaemonSet its node name, state hostPath, broker hostPort and probes', async () => {
    const info = await setup();
    const out = await kubectl(
      info,
      'kustomize',
      path.resolve(import.meta.dirname, '..', '..', 'manifests'),
    );
    const ds = parseAllDocuments(out)
      .map((d) => d.toJS() as { kind?: string; spec?: unknown })
      .find((d) => d.kind === 'DaemonSet') as
      | {
          spec: {
            template: {
              spec: { containers: Record<string, unknown>[]; volumes: Record<string, unknown>[] };
            };
          };
        }
      | undefined;
    assert.ok(ds, 'no DaemonSet');
    const pod = ds.spec.template.spec;
    const agent = pod.containers[0] as {
      env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
      ports: { name: string; containerPort: number; hostPort?: number }[];
      readinessProbe: { httpGet: { path: string } };
      livenessProbe: { httpGet: { path: string } };
      args: string[];
    };
    assert.equal(
      agent.env.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath,
      'spec.nodeName',
    );
    assert.deepEqual(
      agent.ports.find((p) => p.name === 'mqtt'),
      { name: 'mqtt', containerPort: 1883, hostPort: 1883, protocol: 'TCP' },
    );
    assert.equal(agent.readinessProbe.httpGet.path, '/readyz');
    assert.equal(agent.livenessProbe.httpGet.path, '/healthz');
    assert.ok(agent.args.includes('--state-dir=/var/lib/edgebridge'));
    assert.deepEqual(
      pod.volumes.find((v) => v.name === 'state'),
      {
        name: 'state',
        hostPath: { path: '/var/lib/edgebridge', type: 'DirectoryOrCreate' },
      },
    );
  });

  it('turn the uplink on with the sample ConfigMap and DaemonSet patch, in a server-side dry run', async () => {
    const info = await setup();
    await installAgentRbac(info);
    const root = path.resolve(import.meta.dirname, '..', '..', 'manifests');
    const patched = await kubectl(
      info,
      'patch',
      '--local',
      '-f',
      path.join(root, 'agent', 'daemonset.yaml'),
      '--type',
      'json',
      '--patch-file',
      path.join(root, 'samples', 'uplink-patch.yaml'),
      '-o',
      'json',
    );
    const ds = JSON.parse(patched) as {
      spec: {
        template: {
          spec: {
            containers: {
              args: string[];
              env: { name: string; value?: string }[];
              volumeMounts: { name: string; mountPath: string }[];
            }[];
            volumes: { name: string; configMap?: { name: string } }[];
          };
        };
      };
    };
    const pod = ds.spec.template.spec;
    assert.ok(
      pod.containers[0]?.args.includes('--uplink-config=/etc/edgebridge/uplink/uplink.yaml'),
    );
    assert.equal(
      pod.containers[0]?.env.find((e) => e.name === 'NODE_OPTIONS')?.value,
      '--max-semi-space-size=8',
    );
    assert.equal(
      pod.containers[0]?.volumeMounts.find((m) => m.name === 'uplink-config')?.mountPath,
      '/etc/edgebridge/uplink',
    );
    assert.equal(
      pod.volumes.find((v) => v.name === 'uplink-config')?.configMap?.name,
      'edgebridge-uplink',
    );
    const file = path.join(scratchDir('uplink-manifests'), 'daemonset.json');
    writeFileSync(file, patched);
    const names = await applyDryRun(info, [
      '-f',
      file,
      '-f',
      path.join(root, 'samples', 'uplink-config.yaml'),
    ]);
    assert.deepEqual(names.sort(), [
      'configmap/edgebridge-uplink',
      'daemonset.apps/edgebridge-agent',
    ]);
  });
});
