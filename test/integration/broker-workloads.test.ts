// The controller's broker workloads against the real API server, scheduler and
// garbage collector: Pods per node that sees a Device, placed there by the
// scheduler; made again when deleted or failed; a node leaving takes its Pod;
// Services per Device and per Discovery; a pod spec the API server refuses is
// reported for the Discovery.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { API_VERSION, GROUP, VERSION, type Device, type Discovery } from '../../src/api/types.ts';
import { BrokerReconciler } from '../../src/controller/broker-reconciler.ts';
import { LABEL_DEVICE } from '../../src/controller/broker-workloads.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { resourcePath } from '../../src/registry/kubernetes/client/paths.ts';
import { installCrds } from '../harness/crds.ts';
import { createReadyNode, testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { eventually } from '../harness/devices.ts';

interface Pod {
  metadata: {
    name: string;
    uid: string;
    labels?: Record<string, string>;
    ownerReferences?: { kind: string; name: string }[];
  };
  spec: { nodeName?: string; affinity?: unknown };
  status?: { phase?: string };
}
interface List<T> {
  items: T[];
}

const custom = (plural: string, namespace: string, name?: string, subresource?: string): string =>
  resourcePath({
    group: GROUP,
    version: VERSION,
    plural,
    namespace,
    ...(name ? { name } : {}),
    ...(subresource ? { subresource } : {}),
  });
const core = (plural: string, namespace: string, name?: string, subresource?: string): string =>
  resourcePath({
    version: 'v1',
    plural,
    namespace,
    ...(name ? { name } : {}),
    ...(subresource ? { subresource } : {}),
  });

describe('broker workloads, against the real API server and scheduler', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane({ controllerManager: true, scheduler: true });
    await installCrds(info);
    const ns = await testNamespace(info, 'brokers');
    const suffix = randomBytes(3).toString('hex');
    const nodes = [`bw-a-${suffix}`, `bw-b-${suffix}`];
    for (const node of nodes) await createReadyNode(info, node);
    const client = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    const problems = new Map<string, string | undefined>();
    const reconciler = new BrokerReconciler({
      client,
      log: pino({ level: 'silent' }),
      onProblem: (namespace, discovery, problem) =>
        problems.set(`${namespace}/${discovery}`, problem),
    });
    const stop = new AbortController();
    const running = reconciler.run(stop.signal);
    return { info, ns, nodes, client, problems, reconciler, stop, running };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    s.stop.abort();
    await s.running;
    s.client.close();
    await s.ns.remove();
  });

  async function discovery(name: string, spec: Partial<Discovery['spec']>): Promise<Discovery> {
    const { client, ns } = await setup();
    return client.request<Discovery>('POST', custom('discoveries', ns.name), {
      body: {
        apiVersion: API_VERSION,
        kind: 'Discovery',
        metadata: { name },
        // No agent of another test file may write Devices for it.
        spec: {
          handler: { name: 'simulated', details: {} },
          nodeSelector: { matchLabels: { 'edgebridge.io/test-no-agent': 'true' } },
          ...spec,
        },
      },
    });
  }

  /** A Device as the controller writes it, seen by `nodes`. */
  async function device(owner: Discovery, name: string, nodes: string[]): Promise<Device> {
    const { client, ns } = await setup();
    const made = await client.request<Device>('POST', custom('devices', ns.name), {
      body: {
        apiVersion: API_VERSION,
        kind: 'Device',
        metadata: {
          name,
          ownerReferences: [
            {
              apiVersion: API_VERSION,
              kind: 'Discovery',
              name: owner.metadata.name,
              uid: owner.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: {
          discovery: owner.metadata.name,
          handler: 'simulated',
          shared: true,
          id: name,
          capacity: 1,
        },
      },
    });
    return setNodes(made, nodes);
  }

  async function setNodes(current: Device, nodes: string[]): Promise<Device> {
    const { client, ns } = await setup();
    return client.request<Device>(
      'PATCH',
      custom('devices', ns.name, current.metadata.name, 'status'),
      {
        body: { status: { nodes: nodes.map((name) => ({ name })) } },
        contentType: 'application/merge-patch+json',
      },
    );
  }

  async function brokerPods(deviceName: string): Promise<Pod[]> {
    const { client, ns } = await setup();
    const list = await client.request<List<Pod>>('GET', core('pods', ns.name), {
      query: { labelSelector: `${LABEL_DEVICE}=${deviceName}` },
    });
    return list.items.filter(
      (p) => !(p as { metadata: { deletionTimestamp?: string } }).metadata.deletionTimestamp,
    );
  }

  const podSpec = { containers: [{ name: 'broker', image: 'registry.invalid/broker:1' }] };

  it('makes a broker Pod for each node that sees a Device, which the scheduler places there, and the Services', async () => {
    const { nodes, client, ns } = await setup();
    const d = await discovery('cams', {
      broker: { podSpec },
      deviceService: { ports: [{ port: 8080 }] },
      discoveryService: { ports: [{ port: 8081 }] },
    });
    await device(d, 'cams-aaaaaaaaaa', nodes);
    const pods = await eventually('two broker pods, scheduled', async () => {
      const p = await brokerPods('cams-aaaaaaaaaa');
      return p.length === 2 && p.every((x) => x.spec.nodeName !== undefined) ? p : undefined;
    });
    assert.deepEqual(pods.map((p) => p.spec.nodeName).sort(), [...nodes].sort());
    for (const p of pods)
      assert.deepEqual(
        p.metadata.ownerReferences?.map((r) => [r.kind, r.name]),
        [['Device', 'cams-aaaaaaaaaa']],
      );
    const services = await eventually('the device and discovery Services', async () => {
      const list = await client.request<
        List<{ metadata: { name: string }; spec: { selector: Record<string, string> } }>
      >('GET', core('services', ns.name));
      return list.items.length === 2 ? list.items : undefined;
    });
    assert.deepEqual(services.map((s) => s.metadata.name).sort(), [
      'cams-aaaaaaaaaa-svc',
      'cams-svc',
    ]);
  });

  it('makes a broker again when it is deleted or fails, and removes the one of a node that no longer sees the Device', async () => {
    const { nodes, client, ns } = await setup();
    const d = await discovery('sticks', { broker: { podSpec } });
    const dev = await device(d, 'sticks-bbbbbbbbbb', nodes);
    const [first] = await eventually('two broker pods', async () => {
      const p = await brokerPods('sticks-bbbbbbbbbb');
      return p.length === 2 ? p : undefined;
    });
    assert.ok(first !== undefined);
    await client.request('DELETE', core('pods', ns.name, first.metadata.name), {
      body: { gracePeriodSeconds: 0 },
    });
    const again = await eventually('the deleted broker made again', async () => {
      const p = (await brokerPods('sticks-bbbbbbbbbb')).find(
        (x) => x.metadata.name === first.metadata.name,
      );
      return p !== undefined && p.metadata.uid !== first.metadata.uid ? p : undefined;
    });
    // No kubelet runs here: the test says the container failed, as a kubelet would.
    await client.request('PATCH', core('pods', ns.name, again.metadata.name, 'status'), {
      body: { status: { phase: 'Failed' } },
      contentType: 'application/merge-patch+json',
    });
    await eventually('the failed broker made again', async () => {
      const p = (await brokerPods('sticks-bbbbbbbbbb')).find(
        (x) => x.metadata.name === first.metadata.name,
      );
      return p !== undefined &&
        p.metadata.uid !== again.metadata.uid &&
        p.status?.phase !== 'Failed'
        ? true
        : undefined;
    });
    await setNodes(dev, [nodes[0] ?? '']);
    const left = await eventually('one broker, on the node that still sees it', async () => {
      const p = await brokerPods('sticks-bbbbbbbbbb');
      return p.length === 1 ? p : undefined;
    });
    assert.match(
      JSON.stringify(left[0]?.spec.affinity),
      new RegExp(`"values":\\["${nodes[0]}"\\]`),
    );
    await client.request('DELETE', custom('devices', ns.name, 'sticks-bbbbbbbbbb'));
    await eventually('no broker once the Device is gone', async () =>
      (await brokerPods('sticks-bbbbbbbbbb')).length === 0 ? true : undefined,
    );
  });

  it('reports a pod spec the API server refuses for the Discovery, with its reason', async () => {
    const { nodes, ns, problems } = await setup();
    const d = await discovery('broken', { broker: { podSpec: { containers: [] } } });
    await device(d, 'broken-cccccccccc', nodes);
    const problem = await eventually('a problem for the Discovery', () =>
      Promise.resolve(problems.get(`${ns.name}/broken`)),
    );
    assert.match(problem, /containers/);
    assert.deepEqual(await brokerPods('broken-cccccccccc'), []);
  });
});
