import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  ApiException,
  AuthenticationV1Api,
  CoreV1Api,
  ResourceV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import { TEST_USERS } from '../harness/control-plane.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';

const run = promisify(execFile);

/** The HTTP status of a rejected API call, or undefined if it succeeded. */
async function statusOf(call: Promise<unknown>): Promise<number | undefined> {
  try {
    await call;
    return undefined;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

describe('the test control plane (etcd + kube-apiserver, RBAC on)', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    return {
      info,
      admin: kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api),
      agent: kubeConfigFor(info, 'agent').makeApiClient(CoreV1Api),
      ns: await testNamespace(info, 'plumbing'),
    };
  };
  const setup = lazy(() => (started = make()));
  after(async () => (await settled(started))?.ns.remove());

  it('lets the admin create a ConfigMap and read it back', async () => {
    const { admin, ns } = await setup();
    await admin.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'greeting' }, data: { hello: 'edge' } },
    });
    const cm = await admin.readNamespacedConfigMap({ namespace: ns.name, name: 'greeting' });
    assert.equal(cm.data?.hello, 'edge');
  });

  it('authenticates the agent token as the agent service account', async () => {
    const { info } = await setup();
    const auth = kubeConfigFor(info, 'agent').makeApiClient(AuthenticationV1Api);
    const review = await auth.createSelfSubjectReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    assert.equal(review.status?.userInfo?.username, TEST_USERS.agent.name);
  });

  // Other test files may bind the agent's ClusterRole (which grants get on
  // ConfigMaps and Secrets by name) on this shared API server: these checks use
  // rights that role never gives.
  it('refuses the agent token where RBAC gives it no right', async () => {
    const { agent, ns } = await setup();
    assert.equal(await statusOf(agent.listNamespacedConfigMap({ namespace: ns.name })), 403);
    assert.equal(
      await statusOf(agent.deleteNamespacedConfigMap({ namespace: ns.name, name: 'greeting' })),
      403,
    );
    assert.equal(
      await statusOf(agent.createNamespace({ body: { metadata: { name: `${ns.name}-agent` } } })),
      403,
    );
    assert.equal(await statusOf(agent.listSecretForAllNamespaces()), 403);
  });

  it('answers kubectl as the admin and refuses it as the agent', async () => {
    const { info, ns } = await setup();
    const kubectl = (user: 'admin' | 'agent', ...args: string[]) =>
      run(info.kubectl, ['--kubeconfig', info.kubeconfigs[user], '-n', ns.name, ...args]);
    const read = ['get', 'configmap', 'greeting', '-o', 'jsonpath={.data.hello}'];
    assert.equal((await kubectl('admin', ...read)).stdout, 'edge');
    await assert.rejects(
      kubectl('agent', 'get', 'configmaps'),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /forbidden/i);
        return true;
      },
    );
  });

  it('refuses a token it does not know', async () => {
    const { info } = await setup();
    const kc = kubeConfigFor(info, 'admin');
    const user = kc.getCurrentUser();
    assert.ok(user);
    Object.assign(user, { token: 'not-a-real-token' });
    assert.equal(await statusOf(kc.makeApiClient(CoreV1Api).listNamespace()), 401);
  });
});

describe('kube-controller-manager, started on request', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane({ controllerManager: true });
    assert.equal(info.controllerManager, true);
    return {
      info,
      admin: kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api),
      ns: await testNamespace(info, 'gc'),
    };
  };
  const setup = lazy(() => (started = make()));
  after(async () => (await settled(started))?.ns.remove());

  it('garbage-collects an object whose owner was deleted', async () => {
    const { admin, ns } = await setup();
    const owner = await admin.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'owner' } },
    });
    assert.ok(owner.metadata?.uid);
    await admin.createNamespacedConfigMap({
      namespace: ns.name,
      body: {
        metadata: {
          name: 'owned',
          ownerReferences: [
            { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid },
          ],
        },
      },
    });
    await admin.deleteNamespacedConfigMap({ namespace: ns.name, name: 'owner' });
    await eventually('the owned ConfigMap to be collected', async () =>
      (await statusOf(admin.readNamespacedConfigMap({ namespace: ns.name, name: 'owned' }))) === 404
        ? true
        : undefined,
    );
  });

  it('finishes deleting a namespace with objects in it', async () => {
    const { info, admin } = await setup();
    const doomed = await testNamespace(info, 'doomed');
    await admin.createNamespacedConfigMap({
      namespace: doomed.name,
      body: { metadata: { name: 'content' } },
    });
    await doomed.remove();
    await eventually('the namespace to be gone', async () =>
      (await statusOf(admin.readNamespace({ name: doomed.name }))) === 404 ? true : undefined,
    );
  });
});

describe('kube-scheduler, started on request', () => {
  const nodeName = `edge-node-${process.pid}`;
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane({ controllerManager: true, scheduler: true });
    assert.equal(info.scheduler, true);
    const admin = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
    const ns = await testNamespace(info, 'sched');
    await createReadyNode(info, nodeName, { 'edgebridge.io/test-node': nodeName });
    return { info, admin, ns };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    await s?.admin.deleteNode({ name: nodeName }).catch(() => undefined);
    await s?.ns.remove();
  });

  it('places a pod on a Node object that the test created', async () => {
    const { admin, ns } = await setup();
    // The ServiceAccount admission plugin needs the namespace's default service account.
    await eventually('the default service account', async () =>
      (await statusOf(
        admin.readNamespacedServiceAccount({ namespace: ns.name, name: 'default' }),
      )) === undefined
        ? true
        : undefined,
    );
    const pod: V1Pod = {
      metadata: { name: 'consumer' },
      spec: {
        nodeSelector: { 'edgebridge.io/test-node': nodeName },
        containers: [
          {
            name: 'main',
            image: 'registry.invalid/none:0',
            resources: { requests: { cpu: '100m' } },
          },
        ],
      },
    };
    await admin.createNamespacedPod({ namespace: ns.name, body: pod });
    const placed = await eventually('the pod to be scheduled', async () => {
      const p = await admin.readNamespacedPod({ namespace: ns.name, name: 'consumer' });
      return p.spec?.nodeName !== undefined && p.spec.nodeName !== '' ? p.spec.nodeName : undefined;
    });
    assert.equal(placed, nodeName);
  });

  it('allocates a DRA claim from a ResourceSlice on that Node and places the pod there', async () => {
    const { info, admin, ns } = await setup();
    const resource = kubeConfigFor(info, 'admin').makeApiClient(ResourceV1Api);
    const driver = `${nodeName}.test.edgebridge.io`;
    await resource.createDeviceClass({
      body: {
        metadata: { name: driver },
        spec: { selectors: [{ cel: { expression: `device.driver == "${driver}"` } }] },
      },
    });
    await resource.createResourceSlice({
      body: {
        metadata: { name: `${nodeName}-camera` },
        spec: {
          driver,
          nodeName,
          pool: { name: nodeName, generation: 1, resourceSliceCount: 1 },
          devices: [{ name: 'camera-0' }],
        },
      },
    });
    await resource.createNamespacedResourceClaim({
      namespace: ns.name,
      body: {
        metadata: { name: 'camera' },
        spec: { devices: { requests: [{ name: 'cam', exactly: { deviceClassName: driver } }] } },
      },
    });
    await admin.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'camera-user' },
        spec: {
          resourceClaims: [{ name: 'cam', resourceClaimName: 'camera' }],
          containers: [
            {
              name: 'main',
              image: 'registry.invalid/none:0',
              resources: { claims: [{ name: 'cam' }] },
            },
          ],
        },
      },
    });
    const placed = await eventually('the pod with a claim to be scheduled', async () => {
      const p = await admin.readNamespacedPod({ namespace: ns.name, name: 'camera-user' });
      return p.spec?.nodeName !== undefined && p.spec.nodeName !== '' ? p.spec.nodeName : undefined;
    });
    assert.equal(placed, nodeName);
    const claim = await resource.readNamespacedResourceClaim({
      namespace: ns.name,
      name: 'camera',
    });
    assert.deepEqual(
      claim.status?.allocation?.devices?.results?.map((r) => [r.driver, r.pool, r.device]),
      [[driver, nodeName, 'camera-0']],
    );
    await resource.deleteResourceSlice({ name: `${nodeName}-camera` });
    await resource.deleteDeviceClass({ name: driver });
  });
});
