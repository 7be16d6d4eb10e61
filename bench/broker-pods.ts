// Time from a Device's appearance (created, its node in status.nodes) to a
// broker Pod object for it that the real kube-scheduler has placed on that
// node: first one Device alone, then DEVICES (default 1,000) created in a burst,
// spread over NODES Node objects (110 pods each). The broker reconciler runs
// in this process, as in the controller.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { API_VERSION, GROUP, VERSION, type Device, type Discovery } from '../src/api/types.ts';
import { BrokerReconciler } from '../src/controller/broker-reconciler.ts';
import { LABEL_DEVICE } from '../src/controller/broker-workloads.ts';
import { runInformer } from '../src/registry/kubernetes/client/informer.ts';
import { KubeClient } from '../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../src/registry/kubernetes/client/kubeconfig.ts';
import { listWatch } from '../src/registry/kubernetes/client/list-watch.ts';
import { resourcePath } from '../src/registry/kubernetes/client/paths.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { installCrds } from '../test/harness/crds.ts';
import { createReadyNode, testNamespace } from '../test/harness/kube.ts';
import { scratchDir } from '../test/harness/workdir.ts';

const DEVICES = Number(process.env.DEVICES ?? '1000');
const NODES = Number(process.env.NODES ?? String(Math.ceil(DEVICES / 100) + 1));
const CONCURRENCY = 16;

interface Pod {
  metadata: { name?: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
}

const cp = new ControlPlane(scratchDir('bench-control-plane'));
const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'error' });
const stop = new AbortController();
try {
  const info = await cp.ensure({ controllerManager: true, scheduler: true });
  await installCrds(info);
  const ns = await testNamespace(info, 'bench-brokers');
  const suffix = randomBytes(2).toString('hex');
  const nodes = Array.from({ length: NODES }, (_, i) => `brk-${suffix}-${i}`);
  for (const node of nodes) await createReadyNode(info, node);
  const client = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
  const custom = (plural: string, name?: string, subresource?: string): string =>
    resourcePath({
      group: GROUP,
      version: VERSION,
      plural,
      namespace: ns.name,
      ...(name !== undefined ? { name } : {}),
      ...(subresource !== undefined ? { subresource } : {}),
    });
  const discovery = await client.request<Discovery>('POST', custom('discoveries'), {
    body: {
      apiVersion: API_VERSION,
      kind: 'Discovery',
      metadata: { name: 'bench' },
      spec: {
        handler: { name: 'simulated', details: {} },
        nodeSelector: { matchLabels: { 'edgebridge.io/test-no-agent': 'true' } },
        broker: { podSpec: { containers: [{ name: 'broker', image: 'registry.invalid/b:1' }] } },
      },
    },
  });

  // When each Device appeared, and when its Pod was first seen placed.
  const appeared = new Map<string, number>();
  const placed = new Map<string, number>();
  let onPlaced: (() => void) | undefined;
  void runInformer<Pod>(
    {
      source: listWatch(
        client,
        resourcePath({ version: 'v1', plural: 'pods', namespace: ns.name }),
      ),
      onSync: (pods) => {
        const now = performance.now();
        for (const pod of pods) {
          const device = pod.metadata.labels?.[LABEL_DEVICE];
          if (device !== undefined && pod.spec.nodeName !== undefined && !placed.has(device))
            placed.set(device, now);
        }
        onPlaced?.();
      },
      log,
      what: 'pods',
    },
    stop.signal,
  );
  const reconciler = new BrokerReconciler({ client, log });
  const running = reconciler.run(stop.signal);

  const makeDevice = async (i: number): Promise<void> => {
    const name = `bench-${String(i).padStart(10, '0')}`;
    const device = await client.request<Device>('POST', custom('devices'), {
      body: {
        apiVersion: API_VERSION,
        kind: 'Device',
        metadata: {
          name,
          ownerReferences: [
            {
              apiVersion: API_VERSION,
              kind: 'Discovery',
              name: 'bench',
              uid: discovery.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: { discovery: 'bench', handler: 'simulated', shared: false, id: name, capacity: 1 },
      },
    });
    // It appears for the controller when its node is written into its status.
    appeared.set(name, performance.now());
    await client.request('PATCH', custom('devices', device.metadata.name, 'status'), {
      body: { status: { nodes: [{ name: nodes[i % nodes.length] }] } },
      contentType: 'application/merge-patch+json',
    });
  };
  const allPlaced = (count: number): Promise<void> =>
    new Promise((resolve) => {
      onPlaced = () => {
        if (placed.size >= count) resolve();
      };
      onPlaced();
    });

  await sleep(2000); // the reconciler's caches have their first lists
  await makeDevice(0);
  await allPlaced(1);
  const single =
    (placed.get('bench-0000000000') ?? NaN) - (appeared.get('bench-0000000000') ?? NaN);

  const start = performance.now();
  let next = 1;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next <= DEVICES) await makeDevice(next++);
    }),
  );
  const created = performance.now() - start;
  await allPlaced(DEVICES + 1);
  const total = performance.now() - start;
  const latencies = [...appeared]
    .filter(([name]) => name !== 'bench-0000000000')
    .map(([name, t]) => (placed.get(name) ?? NaN) - t)
    .sort((a, b) => a - b);
  const at = (q: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const ms = (v: number): string => `${Math.round(v)} ms`;
  console.log(`broker-pods (${NODES} nodes, kube-scheduler ${info.version})`);
  console.log(`  one Device -> broker Pod placed:          ${ms(single)}`);
  console.log(`  ${DEVICES} Devices created in:                ${ms(created)}`);
  console.log(`  ${DEVICES} Devices -> all broker Pods placed: ${ms(total)}`);
  console.log(`  per Device: median ${ms(at(0.5))}, p95 ${ms(at(0.95))}, max ${ms(at(1))}`);
  stop.abort();
  await running;
  client.close();
} finally {
  stop.abort();
  await cp.stop();
}
