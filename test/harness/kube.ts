import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CoreV1Api, KubeConfig, type V1Node } from '@kubernetes/client-node';
import {
  ControlPlane,
  type ControlPlaneComponents,
  type ControlPlaneInfo,
  type TestUser,
} from './control-plane.ts';
import { callSupervisor } from './supervisor.ts';
import { runDir } from './workdir.ts';

let local: ControlPlane | undefined;

function supervisorSocket(): string | undefined {
  const socket = process.env.EDGEBRIDGE_TEST_SUPERVISOR;
  return socket !== undefined && socket !== '' ? socket : undefined;
}

/**
 * The run's control plane with at least `components` running. Under test/run.ts
 * it is shared by every test file; a file run on its own starts a private one,
 * killed when the process exits.
 */
export async function useControlPlane(
  components: ControlPlaneComponents = {},
): Promise<ControlPlaneInfo> {
  const socket = supervisorSocket();
  if (socket !== undefined)
    return (await callSupervisor(socket, '/control-plane', components)) as ControlPlaneInfo;
  local ??= new ControlPlane(path.join(runDir(), 'control-plane'));
  return local.ensure(components);
}

/**
 * A control plane of this test file's own, for tests whose effects reach
 * beyond their namespace (a controller of every namespace, an admission policy
 * for every agent). Stop it in an after() hook.
 */
export async function privateControlPlane(
  name: string,
  components: ControlPlaneComponents = {},
): Promise<{ info: ControlPlaneInfo; controlPlane: ControlPlane }> {
  const controlPlane = new ControlPlane(path.join(runDir(), name));
  return { info: await controlPlane.ensure(components), controlPlane };
}

/** Stops (`'stop'`) or starts again (`'start'`) the API server, keeping etcd and its data. */
export async function toggleApiServer(action: 'stop' | 'start'): Promise<void> {
  const socket = supervisorSocket();
  if (socket !== undefined) {
    await callSupervisor(socket, `/control-plane/apiserver/${action}`);
    return;
  }
  if (local === undefined) throw new Error('no control plane started in this process');
  await (action === 'stop' ? local.stopApiServer() : local.startApiServer());
}

/** A KubeConfig that authenticates as one of the test identities. */
export function kubeConfigFor(info: ControlPlaneInfo, user: TestUser): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(info.kubeconfigs[user]);
  return kc;
}

/** Creates a namespace of its own for one test, as admin; the returned function deletes it. */
export async function testNamespace(
  info: ControlPlaneInfo,
  prefix: string,
): Promise<{ name: string; remove: () => Promise<void> }> {
  const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({
    body: { metadata: { name, labels: { 'edgebridge.io/test': 'true' } } },
  });
  return {
    name,
    remove: async () => {
      await core.deleteNamespace({ name }).catch(() => undefined);
    },
  };
}

/**
 * Creates a Node object that looks like a ready kubelet's (capacity, Ready
 * condition) so that the scheduler places pods on it. No kubelet runs here, so
 * the harness does what the node lifecycle controller would do on the first
 * heartbeat: drop the not-ready taint that admission put on the new Node.
 */
export async function createReadyNode(
  info: ControlPlaneInfo,
  name: string,
  labels: Record<string, string> = {},
): Promise<V1Node> {
  const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
  await core.createNode({
    body: { metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } } },
  });
  const now = new Date();
  const resources = { cpu: '4', memory: '8Gi', pods: '110' };
  // The node lifecycle controller writes a new Node too (taints, its own
  // status): read again and reapply until a write wins.
  await onConflictRetry(async () => {
    const node = await core.readNode({ name });
    node.status = {
      capacity: resources,
      allocatable: resources,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'edgebridge test node',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
    };
    await core.replaceNodeStatus({ name, body: node });
  });
  return onConflictRetry(async () => {
    const node = await core.readNode({ name });
    const spec = node.spec ?? {};
    spec.taints = (spec.taints ?? []).filter((t) => t.key !== 'node.kubernetes.io/not-ready');
    node.spec = spec;
    return core.replaceNode({ name, body: node });
  });
}

/** Runs `write` again while the API server answers 409 Conflict (a few times at most). */
async function onConflictRetry<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if ((err as { code?: unknown }).code !== 409 || attempt >= 10) throw err;
    }
  }
}
