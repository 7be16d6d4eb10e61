import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Device } from '../../src/api/types.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually, writeDevicesFile } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { kubectlAsAdmin } from '../harness/kubectl.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import { scratchDir } from '../harness/workdir.ts';
import { canary } from '../harness/canaries.ts';

// Agents watch Discoveries cluster-wide; every Discovery here selects only this
// file's nodes, so that agents of other test files running at the same time ignore it.
const group = `agent-${process.pid}`;
const nodeA = `${group}-a`;
const nodeB = `${group}-b`;
const GROUP_LABEL = 'edgebridge.io/test-group';
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const RECORD_IMPORTS = path.resolve(import.meta.dirname, '../harness/record-imports.ts');
const importsDir = scratchDir('agent-imports');
/** Where the modules that `name`'s process resolved are recorded. */
const importsOf = (name: string): string => path.join(importsDir, `${name}.txt`);
const run = promisify(execFile);

/** Writes of an agent: its slices (it writes nothing else). */
const writes = async (agent: AgentProcess): Promise<number> => {
  let n = 0;
  for (const verb of ['create', 'update', 'delete'])
    n += await agent.metric('edgebridge_registry_requests_total', {
      verb,
      resource: 'deviceslices',
    });
  return n;
};

describe('the agent against a real API server, with the low-privilege agent token, and the controller', () => {
  let started: ReturnType<typeof make> | undefined;
  let controller: ControllerProcess | undefined;
  const agents: AgentProcess[] = [];
  /** The latest agent started for each node (a test restarts node A's). */
  const current = new Map<string, AgentProcess>();
  const agentOf = (node: string): AgentProcess => {
    const agent = current.get(node);
    assert.ok(agent, `no agent running for ${node}`);
    return agent;
  };
  const make = async () => {
    const info = await useControlPlane({ controllerManager: true });
    await installCrds(info);
    await installAgentRbac(info);
    await installControllerRbac(info);
    // Agents write slices; only the controller makes Devices of them.
    const ns = await testNamespace(info, 'agent');
    controller = await startController(info, { namespace: ns.name });
    await createReadyNode(info, nodeA, { [GROUP_LABEL]: group });
    await createReadyNode(info, nodeB, { [GROUP_LABEL]: group });
    const start = async (node: string): Promise<AgentProcess> => {
      const agent = await startAgent({
        node,
        registryArgs: ['--kubeconfig', info.kubeconfigs.agent],
        nodeArgs: ['--import', RECORD_IMPORTS],
        env: { EDGEBRIDGE_RECORD_IMPORTS: importsOf(node) },
      });
      agents.push(agent);
      current.set(node, agent);
      return agent;
    };
    await Promise.all([start(nodeA), start(nodeB)]);
    return {
      info,
      ns,
      objects: edgeObjects(info, ns.name),
      dir: scratchDir('agent-devices'),
      start,
    };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await controller?.stop();
    const s = await settled(started);
    if (s === undefined) return;
    const core = kubeConfigFor(s.info, 'admin').makeApiClient(CoreV1Api);
    for (const n of [nodeA, nodeB]) await core.deleteNode({ name: n }).catch(() => undefined);
    await s.ns.remove();
  });

  it('registers what a simulated discovery lists, and removes a device after its grace period', async () => {
    const { objects, dir } = await setup();
    const file = path.join(dir, 'basic.yaml');
    writeDevicesFile(file, [
      {
        id: 'cam-1',
        properties: { SIM_URL: 'rtsp://cam-1/stream' },
        labels: { 'example.com/model': 'x100' },
      },
      { id: 'cam-2' },
    ]);
    const discovery = await objects.createDiscovery('basic', {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': nodeA } },
      intervalSeconds: 1,
      gracePeriodSeconds: 1,
    });
    const devices = await eventually('two devices', async () => {
      const list = await objects.devices('basic');
      return list.length === 2 && list.every((d) => (d.status?.nodes ?? []).length === 1)
        ? list
        : undefined;
    });
    const cam1 = devices.find((d) => d.spec.id === 'cam-1');
    assert.ok(cam1);
    assert.match(cam1.metadata.name, /^basic-[0-9a-f]{10}$/);
    assert.equal(cam1.spec.handler, 'simulated');
    assert.equal(cam1.spec.shared, true);
    assert.equal(cam1.spec.capacity, 1);
    assert.deepEqual(cam1.spec.properties, { SIM_URL: 'rtsp://cam-1/stream' });
    assert.equal(cam1.metadata.labels?.['edgebridge.io/discovery'], 'basic');
    assert.equal(cam1.metadata.labels?.['edgebridge.io/handler'], 'simulated');
    assert.equal(cam1.metadata.labels?.['example.com/model'], 'x100');
    assert.deepEqual(
      cam1.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid]),
      [['Discovery', 'basic', discovery.metadata.uid]],
    );
    assert.deepEqual(cam1.status?.nodes, [{ name: nodeA }]);

    writeDevicesFile(file, [{ id: 'cam-2' }]);
    const left = await eventually('cam-1 to be removed', async () => {
      const list = await objects.devices('basic');
      return list.length === 1 ? list : undefined;
    });
    assert.equal(left[0]?.spec.id, 'cam-2');
  });

  it('starts and stops a Discovery as its node is relabelled, watching the Node', async () => {
    const { info, objects, dir } = await setup();
    const file = path.join(dir, 'relabel.yaml');
    writeDevicesFile(file, [{ id: 'lathe-1' }]);
    const role = `edgebridge.io/test-role-${group}`;
    await objects.createDiscovery('relabel', {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: { matchLabels: { [GROUP_LABEL]: group, [role]: 'lathe' } },
      intervalSeconds: 1,
    });
    await sleep(2000);
    assert.deepEqual(await objects.devices('relabel'), [], 'no node carries the label yet');
    // Well inside the agent's 60 s resync: only the Node watch can be this quick.
    const soon = 30_000;
    await kubectlAsAdmin(info, 'label', 'node', nodeB, `${role}=lathe`);
    const added = await eventually(
      'the device on node B',
      async () => {
        const list = await objects.devices('relabel');
        // The Device and its status are two writes: wait for both.
        return list.length === 1 && list[0]?.status?.nodes !== undefined ? list : undefined;
      },
      soon,
    );
    assert.deepEqual(added[0]?.status?.nodes, [{ name: nodeB }]);
    await kubectlAsAdmin(info, 'label', 'node', nodeB, `${role}-`);
    await eventually(
      'the device gone with the label',
      async () => ((await objects.devices('relabel')).length === 0 ? true : undefined),
      soon,
    );
    await objects.deleteDiscovery('relabel');
  });

  it('answers `edgebridge devices` with server-side label and field selectors', async () => {
    const { info, ns } = await setup();
    const cli = async (...args: string[]): Promise<string> =>
      (
        await run(process.execPath, [
          CLI,
          'devices',
          '--kubeconfig',
          info.kubeconfigs.agent,
          '-n',
          ns.name,
          ...args,
        ])
      ).stdout;
    const list = async (...args: string[]): Promise<{ kind: string; items: Device[] }> =>
      JSON.parse(await cli(...args, '-o', 'json')) as { kind: string; items: Device[] };
    const byHandler = await list('--handler', 'simulated');
    assert.equal(byHandler.kind, 'DeviceList');
    assert.deepEqual(
      byHandler.items.map((d) => d.spec.id),
      ['cam-2'],
    );
    assert.equal((await list('-l', 'edgebridge.io/discovery=basic')).items.length, 1);
    assert.equal((await list('-l', 'edgebridge.io/discovery=other')).items.length, 0);
    assert.match(await cli('--node', nodeA), /basic-[0-9a-f]{10}\s+simulated\s+true/);
    assert.doesNotMatch(await cli('--node', nodeB), /basic-/);
  });

  it('restarts without churn, and writes nothing in steady state (no slice write, no Device rewritten)', async () => {
    const { objects, start } = await setup();
    const a = agentOf(nodeA);
    const before = await objects.devices('basic');
    assert.equal(before.length, 1, 'the first test leaves one device');
    const steady = await writes(a);
    await sleep(3000);
    assert.equal(await writes(a), steady, 'an agent at rest writes nothing');

    await a.stop();
    const restarted = await start(nodeA);
    await sleep(3000);
    assert.equal(
      await writes(restarted),
      0,
      'a restarted agent rewrites nothing that is still true',
    );
    const after = await objects.devices('basic');
    assert.deepEqual(
      after.map((d) => [d.metadata.name, d.metadata.uid, d.metadata.resourceVersion]),
      before.map((d) => [d.metadata.name, d.metadata.uid, d.metadata.resourceVersion]),
    );
  });

  it('shares one device between two nodes; each node leaves only its own entry; deleting the Discovery removes it', async () => {
    const { info, objects, dir } = await setup();
    const file = path.join(dir, 'shared.yaml');
    writeDevicesFile(file, [{ id: 'shared-1' }]);
    await objects.createDiscovery('shared', {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: { matchLabels: { [GROUP_LABEL]: group } },
      intervalSeconds: 1,
      gracePeriodSeconds: 1,
    });
    await eventually('the device seen by both nodes', async () => {
      const list = await objects.devices('shared');
      const nodes = list[0]?.status?.nodes?.map((n) => n.name).sort();
      return list.length === 1 && nodes?.join() === [nodeA, nodeB].sort().join() ? true : undefined;
    });

    // Node B stops matching the Discovery's node selector: its agent leaves the device.
    const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
    // A merge patch: the node lifecycle controller writes Nodes too.
    await core.patchNode(
      { name: nodeB, body: { metadata: { labels: { [GROUP_LABEL]: null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await objects.annotateDiscovery('shared', { 'example.com/nudge': '1' });
    const remaining = await eventually('only node A left on the device', async () => {
      const list = await objects.devices('shared');
      return list.length === 1 && list[0]?.status?.nodes?.map((n) => n.name).join() === nodeA
        ? list
        : undefined;
    });
    assert.equal(remaining[0]?.spec.id, 'shared-1');

    await objects.deleteDiscovery('shared');
    await eventually('the device to go with its Discovery', async () =>
      (await objects.devices('shared')).length === 0 ? true : undefined,
    );
  });

  it('reports invalid details on the Discovery and keeps serving the others', async () => {
    const { objects } = await setup();
    const a = agentOf(nodeA);
    await objects.createDiscovery('broken', {
      handler: { name: 'simulated', details: { devices: 'not-a-list' } },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': nodeA } },
    });
    const condition = await eventually('DetailsValid=False', async () => {
      const d = await objects.getDiscovery('broken');
      return d.status?.conditions?.find((c) => c.type === 'DetailsValid' && c.status === 'False');
    });
    assert.equal(condition.reason, 'InvalidDetails');
    assert.match(condition.message, /details\.devices: must be an array/);
    assert.equal((await a.get('/healthz')).status, 200);
    assert.equal(
      (await objects.devices('basic')).length,
      1,
      'the other discovery keeps its device',
    );
    assert.equal((await objects.devices('broken')).length, 0);
  });

  it('resolves properties from a Secret but keeps the value out of Devices and logs', async () => {
    const { info, ns, objects, dir } = await setup();
    const a = agentOf(nodeA);
    const password = canary('camera-password');
    const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'camera-login' }, stringData: { password } },
    });
    const file = path.join(dir, 'secret.yaml');
    writeDevicesFile(file, [{ id: 'locked-cam', properties: { SIM_USER: 'admin' } }]);
    await objects.createDiscovery('with-secret', {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': nodeA } },
      properties: [
        { name: 'USERNAME', value: 'admin' },
        {
          name: 'PASSWORD',
          valueFrom: { secretKeyRef: { name: 'camera-login', key: 'password' } },
        },
      ],
    });
    // The run resolves properties before its first list: a device means the Secret was read.
    await eventually('the device', async () =>
      (await objects.devices('with-secret')).length === 1 ? true : undefined,
    );
    const everything =
      JSON.stringify(await objects.devices()) +
      JSON.stringify(await objects.getDiscovery('with-secret'));
    assert.ok(!everything.includes(password), 'the secret value is in a Device or the Discovery');
    assert.ok(
      !readFileSync(a.logFile, 'utf8').includes(password),
      'the secret value is in the agent log',
    );
  });

  it('loads only the slim Kubernetes client, never @kubernetes/client-node (agent and `devices` command)', async () => {
    const { info, ns } = await setup();
    await run(
      process.execPath,
      [
        '--import',
        RECORD_IMPORTS,
        CLI,
        'devices',
        '--kubeconfig',
        info.kubeconfigs.agent,
        '-n',
        ns.name,
      ],
      {
        env: { ...process.env, EDGEBRIDGE_RECORD_IMPORTS: importsOf('cli-devices') },
      },
    );
    for (const name of [nodeA, nodeB, 'cli-devices']) {
      const loaded = readFileSync(importsOf(name), 'utf8').split('\n');
      // That the Kubernetes path was taken at all, so that the absence below means something.
      assert.ok(
        loaded.some((url) => url.endsWith('/src/registry/kubernetes/client/kube-client.ts')),
        `${name} did not load the slim client`,
      );
      assert.deepEqual(
        loaded.filter((url) => url.includes('@kubernetes/client-node')),
        [],
        `${name} loaded @kubernetes/client-node`,
      );
    }
  });
});
