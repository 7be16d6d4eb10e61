// The Helm chart (manifests/helm/edgebridge) and the kustomize tree
// (manifests/) render the same objects with the same RBAC; both apply with
// server-side apply to a real API server; and the agent, with a token of the
// rendered ServiceAccount bound to a pod on a Node, can do its job and no more.
// Applying cluster-wide RBAC and CRDs would disturb the run's other tests, so
// this file has a control plane of its own.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { ApiException, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { DEVICE_PLURAL, DEVICE_SLICE_PLURAL, DISCOVERY_PLURAL } from '../../src/api/crds.ts';
import {
  API_VERSION,
  GROUP,
  LABEL_DISCOVERY,
  LABEL_NODE,
  VERSION,
  type Device,
  type DeviceSlice,
} from '../../src/api/types.ts';
import { ControlPlane, TEST_USERS, type ControlPlaneInfo } from '../harness/control-plane.ts';
import { helm, helmTemplate, CHART_DIR } from '../harness/helm.ts';
import { kubeConfigFor } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { nodeAgentToken } from '../harness/node-agent-token.ts';
import { scratchDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const MANIFESTS = path.resolve(import.meta.dirname, '..', '..', 'manifests');
const NAMESPACE = 'edgebridge-system';

/** Labels that only Helm puts on objects (pod templates and selectors carry none). */
const HELM_LABELS = [
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
  'helm.sh/chart',
];

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
};
type AgentPod = {
  hostNetwork?: boolean;
  dnsPolicy?: string;
  volumes: { name: string; hostPath?: { path: string } }[];
  containers: {
    volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
    readinessProbe?: unknown;
    livenessProbe?: unknown;
    resources: { requests?: { memory?: string }; limits?: { memory?: string } };
    securityContext: { privileged?: boolean; capabilities?: unknown };
  }[];
};
type PolicyRule = {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
};

const keyOf = (o: K8sObject): string =>
  `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** The objects of a multi-document YAML rendering, by kind/namespace/name. */
function objectsOf(text: string): Map<string, K8sObject> {
  const out = new Map<string, K8sObject>();
  for (const doc of parseAllDocuments(text)) {
    const [error] = doc.errors;
    if (error !== undefined) throw new Error(`a rendering is not YAML: ${error.message}`);
    const o = doc.toJS() as K8sObject | null;
    if (o === null) continue;
    assert.ok(!out.has(keyOf(o)), `${keyOf(o)} is rendered twice`);
    out.set(keyOf(o), o);
  }
  return out;
}

/** Each rule as group/resource:verb strings (with resource names, if any). */
function ruleSet(rules: PolicyRule[] = []): Set<string> {
  const out = new Set<string>();
  for (const r of rules) {
    const targets =
      r.nonResourceURLs ??
      (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).map((res) => `${g}/${res}`));
    for (const t of targets)
      for (const v of r.verbs)
        out.add(`${t}:${v}${r.resourceNames ? `[${r.resourceNames.join(',')}]` : ''}`);
  }
  return out;
}

/** An object as both renderings must agree on it: no Helm labels, RBAC rules apart, config data parsed. */
function comparable(o: K8sObject): unknown {
  const copy = structuredClone(o);
  const labels = Object.entries(copy.metadata.labels ?? {}).filter(
    ([k]) => !HELM_LABELS.includes(k),
  );
  if (labels.length > 0) copy.metadata.labels = Object.fromEntries(labels);
  else delete copy.metadata.labels;
  if (copy.kind === 'ClusterRole' || copy.kind === 'Role') delete copy.rules;
  // Comments and key order in a config file do not matter; its content does.
  if (copy.kind === 'ConfigMap' && copy.data !== undefined) {
    const data = copy.data as Record<string, string>;
    copy.data = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, parse(v) as unknown]));
  }
  return copy;
}

/** Applies RFC 6902 `add`/`replace` operations (what manifests/samples/uplink-patch.yaml uses). */
function jsonPatch(target: unknown, ops: { op: string; path: string; value: unknown }[]): void {
  for (const { op, path: p, value } of ops) {
    const parts = p.split('/').slice(1);
    const last = parts.pop() ?? '';
    let node = target as Record<string, unknown>;
    for (const part of parts) node = node[part] as Record<string, unknown>;
    if (op === 'add' && Array.isArray(node) && last === '-') node.push(value);
    else if (op === 'add' || op === 'replace') node[last] = value;
    else throw new Error(`unsupported patch op ${op}`);
  }
}

const setup = lazy(async () => {
  const cp = new ControlPlane(scratchDir('manifests-control-plane'));
  const info = await cp.ensure();
  return { cp, info, helmHome: scratchDir('helm-home') };
});

/** kubectl as admin with a fresh discovery cache, so that new CRDs are known at once. */
async function kubectl(info: ControlPlaneInfo, ...args: string[]): Promise<string> {
  const { stdout } = await run(
    info.kubectl,
    ['--kubeconfig', info.kubeconfigs.admin, '--cache-dir', scratchDir('kubectl-cache'), ...args],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

async function kustomize(info: ControlPlaneInfo, dir: string): Promise<string> {
  return kubectl(info, 'kustomize', path.join(MANIFESTS, dir));
}

/**
 * Server-side applies a rendering as a user would: CRDs first, then, once
 * their kinds are served, the rest (the sample Discoveries need theirs).
 */
async function applyRendering(
  info: ControlPlaneInfo,
  objects: Map<string, K8sObject>,
  manager: string,
  extra: string[] = [],
): Promise<void> {
  const dir = scratchDir(`apply-${manager}`);
  const all = [...objects.values()];
  const crds = all.filter((o) => o.kind === 'CustomResourceDefinition');
  const rest = all.filter((o) => o.kind !== 'CustomResourceDefinition');
  const write = (name: string, docs: K8sObject[]) => {
    const file = path.join(dir, name);
    writeFileSync(file, docs.map((d) => JSON.stringify(d)).join('\n---\n'));
    return file;
  };
  const apply = (file: string) =>
    kubectl(info, 'apply', '--server-side', `--field-manager=${manager}`, ...extra, '-f', file);
  await apply(write('crds.yaml', crds));
  await kubectl(
    info,
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...crds.map((c) => `crd/${c.metadata.name}`),
  );
  // Established comes before the kinds' storage is ready (429 until then).
  const deadline = Date.now() + 60_000;
  for (const c of crds) {
    for (;;) {
      try {
        await kubectl(info, 'get', c.metadata.name, '-A', '-o', 'name');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(200);
      }
    }
  }
  await apply(write('rest.yaml', rest));
}

/** Waits until `user` may (or may not) do `verb` on `resource`: the RBAC authorizer reads roles from a cache. */
async function waitForRight(
  info: ControlPlaneInfo,
  user: string,
  verb: string,
  resource: string,
  expected: boolean,
  namespace = 'default',
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const allowed = await kubectl(
      info,
      'auth',
      'can-i',
      verb,
      resource,
      '-n',
      namespace,
      `--as=${user}`,
    ).then(
      () => true,
      (err: unknown) => {
        if ((err as { stdout?: string }).stdout?.trim() === 'no') return false;
        throw err;
      },
    );
    if (allowed === expected) return;
    if (Date.now() > deadline)
      throw new Error(`${user} ${expected ? 'still may not' : 'still may'} ${verb} ${resource}`);
    await sleep(100);
  }
}

/** The HTTP status and body of a refused API call; fails if the call succeeds. */
async function refusal(call: Promise<unknown>): Promise<{ code: number; body: string }> {
  try {
    await call;
  } catch (err) {
    if (err instanceof ApiException)
      return {
        code: err.code,
        body: typeof err.body === 'string' ? err.body : JSON.stringify(err.body),
      };
    throw err;
  }
  assert.fail('the API server accepted the request');
}

const objectsApi = (kc: KubeConfig) => kc.makeApiClient(CustomObjectsApi);

function slice(node: string): DeviceSlice {
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceSlice',
    metadata: {
      name: `onvif-cameras-${node}`,
      labels: { [LABEL_NODE]: node, [LABEL_DISCOVERY]: 'onvif-cameras' },
    },
    spec: {
      node,
      discovery: 'onvif-cameras',
      shared: true,
      devices: [{ id: 'cam-1', properties: { ONVIF_DEVICE_SERVICE_URL: 'http://192.0.2.1/' } }],
      deviceCount: 1,
    },
  };
}

const device: Device = {
  apiVersion: API_VERSION,
  kind: 'Device',
  metadata: { name: 'onvif-cameras-0a1b2c3d' },
  spec: { discovery: 'onvif-cameras', handler: 'onvif', shared: true, id: 'cam-1', capacity: 1 },
};

describe('the Helm chart and the kustomize manifests', () => {
  after(async () => {
    await (await settled(setup()))?.cp.stop();
  });

  it('pass helm lint, with the default values and with every option on', async () => {
    const { helmHome } = await setup();
    await helm(helmHome, 'lint', '--strict', CHART_DIR);
    await helm(
      helmHome,
      'lint',
      '--strict',
      CHART_DIR,
      ...['--set', 'controller.replicas=2', '--set', 'uplink.enabled=true'],
      ...['--set', 'samples.enabled=true', '--set', 'namespace.create=true'],
      ...['--set', 'dra.enabled=true'],
    );
  });

  it('render the same objects, labels and config, and the same RBAC rules', async () => {
    const { info, helmHome } = await setup();
    const chart = objectsOf(
      await helmTemplate(helmHome, NAMESPACE, [
        ...['--set', 'namespace.create=true', '--set', 'samples.enabled=true'],
      ]),
    );
    const kustomized = objectsOf(
      (await kustomize(info, '.')) + '\n---\n' + (await kustomize(info, 'samples')),
    );
    const onlyChart = [...chart.keys()].filter((k) => !kustomized.has(k));
    const onlyKustomize = [...kustomized.keys()].filter((k) => !chart.has(k));
    assert.deepEqual(onlyKustomize, [], 'objects that only the kustomize tree renders');
    assert.deepEqual(onlyChart, [], 'objects that only the chart renders');
    // What users expect to find: the agent and the controller, their identities, and a sample per handler.
    for (const k of [
      'DaemonSet/edgebridge-system/edgebridge-agent',
      'Deployment/edgebridge-system/edgebridge-controller',
      'ServiceAccount/edgebridge-system/edgebridge-agent',
      'ServiceAccount/edgebridge-system/edgebridge-controller',
      'ValidatingAdmissionPolicy//edgebridge-agent-own-node-slices',
      'ValidatingAdmissionPolicyBinding//edgebridge-agent-own-node-slices',
      ...['onvif-cameras', 'usb-cameras', 'mdns-services', 'mqtt-sensors', 'demo'].map(
        (n) => `Discovery/default/${n}`,
      ),
    ])
      assert.ok(chart.has(k), `the chart renders no ${k}`);

    for (const [key, fromKustomize] of kustomized) {
      const fromChart = chart.get(key);
      assert.ok(fromChart !== undefined);
      assert.deepEqual(comparable(fromChart), comparable(fromKustomize), `${key} differs`);
      if (fromChart.kind !== 'ClusterRole' && fromChart.kind !== 'Role') continue;
      const a = ruleSet(fromChart.rules as PolicyRule[]);
      const b = ruleSet(fromKustomize.rules as PolicyRule[]);
      assert.deepEqual(
        [...b].filter((r) => !a.has(r)),
        [],
        `${key}: rules only the kustomize tree grants`,
      );
      assert.deepEqual(
        [...a].filter((r) => !b.has(r)),
        [],
        `${key}: rules only the chart grants`,
      );
    }
    // Helm's own labels are on the chart's objects, so that `helm` can tell its objects.
    const agent = chart.get('DaemonSet/edgebridge-system/edgebridge-agent') as
      (K8sObject & { spec: { template: { spec: AgentPod } } }) | undefined;
    assert.equal(agent?.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
    // And what issue 14 asks of the agent's pod, in both (they are equal above).
    const pod = agent?.spec.template.spec;
    assert.ok(pod !== undefined);
    assert.equal(pod.hostNetwork, true, 'multicast discovery needs the host network');
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
    const container = pod.containers[0];
    assert.ok(container !== undefined);
    const mounts = new Map(container.volumeMounts.map((m) => [m.mountPath, m]));
    const hostPaths = new Map(pod.volumes.map((v) => [v.name, v.hostPath?.path]));
    for (const dir of [
      '/var/lib/edgebridge',
      '/var/lib/kubelet/device-plugins',
      '/var/lib/kubelet/plugins_registry',
      '/var/lib/kubelet/pod-resources',
      '/dev',
    ]) {
      const mount = mounts.get(dir);
      assert.ok(mount !== undefined, `nothing mounted at ${dir}`);
      assert.equal(hostPaths.get(mount.name), dir, `${dir} is not the node's`);
    }
    assert.equal(mounts.get('/dev')?.readOnly, true);
    assert.ok(container.readinessProbe && container.livenessProbe);
    assert.ok(container.resources.requests?.memory && container.resources.limits?.memory);
    assert.deepEqual(container.securityContext.capabilities, { drop: ['ALL'] });
    assert.notEqual(container.securityContext.privileged, true);
  });

  it('render no Namespace and no sample Discovery by default', async () => {
    const { helmHome } = await setup();
    const kinds = [...objectsOf(await helmTemplate(helmHome, NAMESPACE)).values()].map(
      (o) => o.kind,
    );
    assert.ok(!kinds.includes('Namespace'));
    assert.ok(!kinds.includes('Discovery'));
    assert.ok(kinds.includes('DaemonSet'));
  });

  it('follow the values: controller replicas and leader election, node selectors, image, uplink', async () => {
    const { info, helmHome } = await setup();
    type Pod = {
      nodeSelector?: Record<string, string>;
      tolerations?: unknown[];
      containers: { image: string; args: string[] }[];
    };
    type Workload = K8sObject & {
      spec: { replicas?: number; strategy?: { type: string }; template: { spec: Pod } };
    };
    const render = async (...args: string[]) => {
      const objects = objectsOf(await helmTemplate(helmHome, NAMESPACE, args));
      return {
        objects,
        agent: objects.get('DaemonSet/edgebridge-system/edgebridge-agent') as Workload,
        controller: objects.get('Deployment/edgebridge-system/edgebridge-controller') as Workload,
      };
    };
    const one = await render();
    assert.equal(one.controller.spec.replicas, 1);
    assert.ok(one.controller.spec.template.spec.containers[0]?.args.includes('--no-leader-elect'));
    assert.equal(one.controller.spec.strategy?.type, 'Recreate');

    const two = await render('--set', 'controller.replicas=2');
    assert.equal(two.controller.spec.replicas, 2);
    const args = two.controller.spec.template.spec.containers[0]?.args ?? [];
    assert.ok(args.includes('--leader-elect'), `controller args: ${args.join(' ')}`);
    assert.ok(!args.includes('--no-leader-elect'));
    assert.equal(two.controller.spec.strategy?.type, 'RollingUpdate');

    const placed = await render(
      ...['--set-string', 'agent.nodeSelector.edgebridge\\.io/edge=true'],
      ...['--set', 'agent.tolerations=null'],
      ...['--set-string', 'controller.nodeSelector.node-role\\.kubernetes\\.io/control-plane='],
      ...['--set', 'image.tag=1.2.3'],
    );
    assert.deepEqual(placed.agent.spec.template.spec.nodeSelector, {
      'edgebridge.io/edge': 'true',
    });
    assert.equal(placed.agent.spec.template.spec.tolerations, undefined);
    assert.deepEqual(placed.controller.spec.template.spec.nodeSelector, {
      'node-role.kubernetes.io/control-plane': '',
    });
    for (const w of [placed.agent, placed.controller])
      assert.equal(
        w.spec.template.spec.containers[0]?.image,
        'ghcr.io/edgebridge/edgebridge:1.2.3',
      );

    // uplink.enabled renders what manifests/samples/uplink-config.yaml and uplink-patch.yaml make.
    const uplink = await render('--set', 'uplink.enabled=true');
    const patched = objectsOf(await kustomize(info, '.')).get(
      'DaemonSet/edgebridge-system/edgebridge-agent',
    );
    assert.ok(patched !== undefined);
    jsonPatch(
      patched,
      parse(readFileSync(path.join(MANIFESTS, 'samples', 'uplink-patch.yaml'), 'utf8')) as {
        op: string;
        path: string;
        value: unknown;
      }[],
    );
    assert.deepEqual(comparable(uplink.agent), comparable(patched));
    const config = uplink.objects.get('ConfigMap/edgebridge-system/edgebridge-uplink');
    const sample = objectsOf(
      readFileSync(path.join(MANIFESTS, 'samples', 'uplink-config.yaml'), 'utf8'),
    ).get('ConfigMap/edgebridge-system/edgebridge-uplink');
    assert.ok(config !== undefined && sample !== undefined);
    assert.deepEqual(
      (comparable(config) as { data: unknown }).data,
      (comparable(sample) as { data: unknown }).data,
    );
  });

  it('render the same DRA additions: dra.enabled and the kustomize component manifests/components/dra', async () => {
    const { info, helmHome } = await setup();
    const chart = objectsOf(
      await helmTemplate(helmHome, NAMESPACE, [
        ...['--set', 'dra.enabled=true', '--set', 'namespace.create=true'],
      ]),
    );
    // A kustomization of a user's own, next to the tree, that adds the component.
    const dir = scratchDir('kustomize-dra');
    const tree = path.relative(dir, MANIFESTS);
    writeFileSync(
      path.join(dir, 'kustomization.yaml'),
      `resources: [${tree}]\ncomponents: [${path.join(tree, 'components', 'dra')}]\n`,
    );
    const kustomized = objectsOf(await kubectl(info, 'kustomize', dir));
    assert.deepEqual(
      [...kustomized.keys()].filter((k) => !chart.has(k)),
      [],
      'objects only the kustomize tree renders',
    );
    assert.deepEqual(
      [...chart.keys()].filter((k) => !kustomized.has(k)),
      [],
      'objects only the chart renders',
    );
    for (const [key, fromKustomize] of kustomized) {
      const fromChart = chart.get(key);
      assert.ok(fromChart !== undefined);
      assert.deepEqual(comparable(fromChart), comparable(fromKustomize), `${key} differs`);
      if (fromChart.kind === 'ClusterRole')
        assert.deepEqual(
          [...ruleSet(fromChart.rules as PolicyRule[])].sort(),
          [...ruleSet(fromKustomize.rules as PolicyRule[])].sort(),
          `${key}: rules differ`,
        );
    }
    type Agent = K8sObject & { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    const agent = chart.get('DaemonSet/edgebridge-system/edgebridge-agent') as Agent | undefined;
    assert.ok(agent?.spec.template.spec.containers[0]?.args.includes('--dra'));
    const rules = ruleSet(
      chart.get('ClusterRole//edgebridge-agent-dra')?.rules as PolicyRule[] | undefined,
    );
    assert.ok(rules.has('resource.k8s.io/resourceslices:create'));
    // And without it, neither renders DRA for the agent.
    const plain = objectsOf(await helmTemplate(helmHome, NAMESPACE));
    assert.ok(!plain.has('ClusterRole//edgebridge-agent-dra'));
    assert.ok(!objectsOf(await kustomize(info, '.')).has('ClusterRole//edgebridge-agent-dra'));
  });

  it('both apply with server-side apply; then the agent, with the rendered ServiceAccount, writes its own slices and reads Discoveries but no Devices', async (t) => {
    const { info, helmHome } = await setup();
    const kustomized = objectsOf(
      (await kustomize(info, '.')) + '\n---\n' + (await kustomize(info, 'samples')),
    );
    // A first install from the kustomize tree, then the chart taking its objects
    // over (as `helm upgrade` after a kustomize install would): forced, since
    // the renderings' RBAC may differ until issue 13's manifests are merged.
    await applyRendering(info, kustomized, 'kustomize');
    const chart = objectsOf(
      await helmTemplate(helmHome, NAMESPACE, [
        ...['--set', 'namespace.create=true', '--set', 'samples.enabled=true'],
      ]),
    );
    await applyRendering(info, chart, 'helm', ['--force-conflicts']);
    for (const key of chart.keys()) {
      const [kind, ns, name] = key.split('/');
      const out = await kubectl(
        info,
        'get',
        `${kind}`,
        name ?? '',
        ...(ns ? ['-n', ns] : []),
        '-o',
        'name',
      );
      assert.ok(out.trim() !== '', `${key} is not on the API server`);
    }

    const agentUser = TEST_USERS.agent.name;
    await waitForRight(info, agentUser, 'create', 'devices.edgebridge.io', false);
    await waitForRight(info, agentUser, 'create', 'deviceslices.edgebridge.io', true);
    const agent = await nodeAgentToken(info, 'helm-node');
    t.after(agent.remove);
    const mine = objectsApi(agent.kubeConfig);
    const kind = { group: GROUP, version: VERSION, namespace: 'default' };

    // Its job: the Discoveries (the samples), and its own node's slices.
    const discoveries = (await mine.listNamespacedCustomObject({
      ...kind,
      plural: DISCOVERY_PLURAL,
    })) as { items: K8sObject[] };
    assert.deepEqual(discoveries.items.map((d) => d.metadata.name).sort(), [
      'demo',
      'mdns-services',
      'mqtt-sensors',
      'onvif-cameras',
      'usb-cameras',
    ]);
    // The admission policy is loaded asynchronously; until then a foreign slice might pass.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const refused = await refusal(
        mine.createNamespacedCustomObject({
          ...kind,
          plural: DEVICE_SLICE_PLURAL,
          body: slice('some-other-node'),
          dryRun: 'All',
        }),
      ).catch(() => undefined);
      if (refused?.code === 422 && refused.body.includes('edgebridge-agent-own-node-slices')) break;
      if (Date.now() > deadline)
        assert.fail(
          `a slice of another node was not refused by the policy: ${JSON.stringify(refused)}`,
        );
      await sleep(200);
    }
    await mine.createNamespacedCustomObject({
      ...kind,
      plural: DEVICE_SLICE_PLURAL,
      body: slice(agent.node),
    });
    await mine.deleteNamespacedCustomObject({
      ...kind,
      plural: DEVICE_SLICE_PLURAL,
      name: slice(agent.node).metadata.name ?? '',
    });

    // And no more: Devices are the controller's.
    assert.equal(
      (
        await refusal(
          mine.createNamespacedCustomObject({ ...kind, plural: DEVICE_PLURAL, body: device }),
        )
      ).code,
      403,
    );

    // The controller's ServiceAccount writes Devices and its Lease, and no slices.
    const controllerUser = TEST_USERS.controller.name;
    await waitForRight(info, controllerUser, 'create', 'devices.edgebridge.io', true);
    await waitForRight(
      info,
      controllerUser,
      'create',
      'leases.coordination.k8s.io',
      true,
      NAMESPACE,
    );
    const controller = objectsApi(kubeConfigFor(info, 'controller'));
    await controller.createNamespacedCustomObject({ ...kind, plural: DEVICE_PLURAL, body: device });
    await controller.deleteNamespacedCustomObject({
      ...kind,
      plural: DEVICE_PLURAL,
      name: device.metadata.name ?? '',
    });
    assert.equal(
      (
        await refusal(
          controller.createNamespacedCustomObject({
            ...kind,
            plural: DEVICE_SLICE_PLURAL,
            body: slice(agent.node),
          }),
        )
      ).code,
      403,
    );
  });
});
