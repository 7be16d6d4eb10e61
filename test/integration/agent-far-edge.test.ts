import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, Watch } from '@kubernetes/client-node';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import type { Device } from '../../src/api/types.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { canary } from '../harness/canaries.ts';
import { installControllerRbac, startController } from '../harness/controller.ts';
import type { ControlPlaneInfo } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually, writeDevicesFile } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import { proxyApiServer, startToxiproxy } from '../harness/toxiproxy.ts';
import { scratchDir } from '../harness/workdir.ts';

/**
 * Starts everything that writes this node's Devices: the agent, whose API
 * traffic crosses the far-edge link. Once Devices are folded from DeviceSlices,
 * the controller starts here too, on the near side of the link.
 */
async function startDeviceWriters(opts: {
  info: ControlPlaneInfo;
  node: string;
  namespace: string;
  farKubeconfig: string;
  brokerConfig: string;
}): Promise<{ agent: AgentProcess; stop: () => Promise<void> }> {
  // The controller runs near the API server (in the cluster); only the agent is far.
  await installControllerRbac(opts.info);
  const controller = await startController(opts.info, { namespace: opts.namespace });
  const agent = await startAgent({
    node: opts.node,
    registryArgs: ['--kubeconfig', opts.farKubeconfig],
    extraArgs: ['--broker-config', opts.brokerConfig, '--log-level', 'info'],
  });
  return {
    agent,
    stop: async () => {
      await agent.stop();
      await controller.stop();
    },
  };
}

// Agents watch Discoveries cluster-wide: the Discovery here selects only this file's node.
const node = `far-edge-${process.pid}`;
const DEVICES = 200;
const EACH_WAY_MS = 150;
const CUT_MS = 120_000;
const GRACE_SECONDS = 20;
// After the link returns: the agent's probe (every 5 s while the API server
// does not answer) notices, its failed writes retry within 2 s, a few writes
// at 300 ms each; the issue aims at 10 s; the bound leaves room for a loaded machine.
const CATCH_UP_MS = 60_000;
const ids = (from: number, to: number, prefix = 'dev'): string[] =>
  Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);

describe('an agent behind a far-edge link (Toxiproxy between it and the API server)', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installAgentRbac(info);
    const ns = await testNamespace(info, 'far-edge');
    await createReadyNode(info, node);
    const dir = scratchDir('far-edge');
    const toxiproxy = await startToxiproxy();
    try {
      const { link, kubeconfig } = await proxyApiServer(toxiproxy, info, 'agent');
      await link.addLatency(EACH_WAY_MS);
      // A broker user whose password is a file: the node broker needs no API server for it.
      const password = canary('far-edge-mqtt');
      const passwordFile = path.join(dir, 'watcher.password');
      writeFileSync(passwordFile, password, { mode: 0o600 });
      const brokerConfig = path.join(dir, 'broker.yaml');
      writeFileSync(
        brokerConfig,
        stringify({
          users: [
            {
              name: 'watcher',
              passwordFrom: { file: passwordFile },
              devices: [{ namespace: ns.name }],
            },
          ],
        }),
      );
      const writers = await startDeviceWriters({
        info,
        node,
        namespace: ns.name,
        farKubeconfig: kubeconfig,
        brokerConfig,
      });
      return {
        info,
        ns,
        dir,
        toxiproxy,
        link,
        writers,
        password,
        objects: edgeObjects(info, ns.name),
      };
    } catch (err) {
      await toxiproxy.stop();
      throw err;
    }
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    await s.writers.stop();
    await s.toxiproxy.stop();
    const core = kubeConfigFor(s.info, 'admin').makeApiClient(CoreV1Api);
    await core.deleteNode({ name: node }).catch(() => undefined);
    await s.ns.remove();
  });

  /** The node's view: the devices file and the Discovery that reads it (created once). */
  const discovery = lazy(async () => {
    const { dir, objects } = await setup();
    const file = path.join(dir, 'devices.json');
    writeDevicesFile(
      file,
      ids(0, DEVICES).map((id) => ({ id })),
    );
    await objects.createDiscovery('far', {
      handler: { name: 'simulated', details: { file, publishIntervalMs: 1000 } },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node } },
      intervalSeconds: 5,
      gracePeriodSeconds: GRACE_SECONDS,
    });
    return { file };
  });

  /** Resolves once the Devices are exactly `expected` (by id), each listing this node. */
  const devicesMatch = async (expected: string[], timeoutMs: number): Promise<Device[]> => {
    const { objects } = await setup();
    const want = [...expected].sort().join(',');
    return eventually(
      `the Devices to be the node's ${expected.length} devices, each listing ${node}`,
      async () => {
        const list = await objects.devices('far');
        const onNode = list.filter((d) => d.status?.nodes?.some((n) => n.name === node));
        const got = onNode
          .map((d) => d.spec.id)
          .sort()
          .join(',');
        return list.length === expected.length && got === want ? list : undefined;
      },
      timeoutMs,
    );
  };

  it(`converges with ${DEVICES} devices at a 300 ms round trip`, async () => {
    await discovery();
    // The end state, not the time it took (bench/agents-converge.ts measures that).
    const devices = await devicesMatch(ids(0, DEVICES), 300_000);
    assert.equal(devices.length, DEVICES);
  });

  it('rides out a 2-minute cut while devices come and go: broker and discovery keep working, nothing is deleted for the cut, and it catches up after', async (t) => {
    const { info, ns, link, writers, password } = await setup();
    const { file } = await discovery();
    await devicesMatch(ids(0, DEVICES), 300_000);
    const { agent } = writers;
    const removed = ids(0, 5);
    const added = ids(0, 5, 'new');
    const afterCut = [...ids(5, DEVICES), ...added];

    // Every DELETE of a Device, seen from the near side of the link (admin, straight to the API server).
    const deletedIds = new Set<string>();
    const watch = await watchDeletes(info, ns.name, (d) => deletedIds.add(d.spec.id));
    const count = (): Promise<number> =>
      agent.metric('edgebridge_devices', { namespace: ns.name, discovery: 'far' });
    const errorsBefore = await agent.metric('edgebridge_reconcile_errors_total');
    let client: mqtt.MqttClient | undefined;
    try {
      await link.cut();
      const cutAt = Date.now();

      // The node broker still takes new clients and publishes device data.
      client = await mqtt.connectAsync(agent.brokerUrl ?? assert.fail('no node broker'), {
        username: 'watcher',
        password,
        reconnectPeriod: 0,
      });
      const lastData = new Map<string, number>();
      client.on('message', (_topic, payload) => {
        const sample = JSON.parse(payload.toString()) as { device?: string };
        if (typeof sample.device === 'string') lastData.set(sample.device, Date.now());
      });
      await client.subscribeAsync(`edgebridge/v1/${ns.name}/+/data`, { qos: 0 });
      await eventually('data from dev-100 during the cut', () =>
        Promise.resolve((lastData.get('dev-100') ?? 0) > cutAt ? true : undefined),
      );

      // Devices come and go; discovery keeps listing them (the agent's own count).
      writeDevicesFile(
        file,
        afterCut.map((id) => ({ id })),
      );
      await eventually(
        'the agent to count the new devices and those in their grace period',
        async () => ((await count()) === DEVICES + added.length ? true : undefined),
      );
      await eventually('data from new-0, which came during the cut', () =>
        Promise.resolve(lastData.has('new-0') ? true : undefined),
      );
      await eventually(
        'the removed devices to leave the count after their grace period',
        async () => ((await count()) === afterCut.length ? true : undefined),
        GRACE_SECONDS * 1000 + 30_000,
      );
      assert.ok(
        (await agent.metric('edgebridge_reconcile_errors_total')) > errorsBefore,
        'the agent felt the cut: its writes through the link failed',
      );

      await sleep(Math.max(0, cutAt + CUT_MS - Date.now()));
      assert.equal((await agent.get('/healthz')).status, 200, 'the agent is still serving');
      const recent = Date.now() - 10_000;
      for (const id of ['dev-100', 'new-0'])
        assert.ok((lastData.get(id) ?? 0) > recent, `${id} still publishes at the end of the cut`);
      assert.deepEqual(
        [...deletedIds].filter((id) => !removed.includes(id)),
        [],
        'no Device the node still sees was deleted during the cut',
      );

      await link.restore();
      const restoredAt = Date.now();
      await devicesMatch(afterCut, CATCH_UP_MS);
      t.diagnostic(
        `Devices matched the node's view ${Date.now() - restoredAt} ms after the link returned`,
      );
      assert.deepEqual(
        [...deletedIds].sort(),
        [...removed].sort(),
        'only the removed devices were deleted',
      );
    } finally {
      await client?.endAsync(true);
      watch.abort();
      await link.restore();
    }
  });
});

/** Watches the namespace's Devices from the latest list on, calling `onDelete` for each DELETED; rewatches if the server ends it. */
async function watchDeletes(
  info: ControlPlaneInfo,
  namespace: string,
  onDelete: (device: Device) => void,
): Promise<AbortController> {
  const kc = kubeConfigFor(info, 'admin');
  const url = `/apis/edgebridge.io/v1alpha1/namespaces/${namespace}/devices`;
  const stop = new AbortController();
  // Unset at first: the watch then starts with the current Devices (as ADDED) and goes on from there.
  let resourceVersion: string | undefined;
  let current: AbortController | undefined;
  const start = async (): Promise<void> => {
    current = await new Watch(kc).watch(
      url,
      { resourceVersion, allowWatchBookmarks: true },
      (phase, obj: Device) => {
        resourceVersion = obj.metadata.resourceVersion ?? resourceVersion;
        if (phase === 'DELETED') onDelete(obj);
      },
      () => {
        if (!stop.signal.aborted)
          start().catch((err: unknown) => {
            throw new Error(`the Device watch could not resume: ${(err as Error).message}`);
          });
      },
    );
  };
  await start();
  stop.signal.addEventListener('abort', () => current?.abort(), { once: true });
  return stop;
}
