// The admission policy of manifests/admission/: an agent writes only DeviceSlices
// of the node named in its bound service-account token. Real tokens, bound to
// Pods on two Node objects, against the real API server.
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApiException,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { DEVICE_SLICE_PLURAL } from '../../src/api/crds.ts';
import {
  API_VERSION,
  GROUP,
  LABEL_DISCOVERY,
  LABEL_NODE,
  VERSION,
  type DeviceSlice,
} from '../../src/api/types.ts';
import { ControlPlane, type ControlPlaneInfo } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import { kubeConfigFor, privateControlPlane, testNamespace } from '../harness/kube.ts';
import { lazy } from '../harness/lazy.ts';
import { nodeAgentToken, type NodeAgentToken } from '../harness/node-agent-token.ts';
import { installSliceAccess } from '../harness/rbac.ts';

const kind = { group: GROUP, version: VERSION, plural: DEVICE_SLICE_PLURAL };
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** A slice named after its node, labelled `labelNode` (spec.node too, unless given). */
function slice(labelNode: string, specNode = labelNode): DeviceSlice {
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceSlice',
    metadata: {
      name: `cams-${labelNode}`,
      labels: { [LABEL_NODE]: labelNode, [LABEL_DISCOVERY]: 'cams' },
    },
    spec: {
      node: specNode,
      discovery: 'cams',
      shared: true,
      devices: [{ id: 'cam-1', properties: { ONVIF_DEVICE_SERVICE_URL: 'http://192.0.2.1/' } }],
      deviceCount: 1,
    },
  };
}

function objects(kc: KubeConfig): CustomObjectsApi {
  return kc.makeApiClient(CustomObjectsApi);
}

/** The status code and message of a refused call; fails if the call succeeds. */
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

/** Two agents' tokens, on nodes A and B, and a namespace; all removed when the test ends. */
async function twoAgents(
  t: TestContext,
  info: ControlPlaneInfo,
): Promise<{ ns: string; a: NodeAgentToken; b: NodeAgentToken }> {
  const ns = await testNamespace(info, 'slice-admission');
  t.after(ns.remove);
  const a = await nodeAgentToken(info, 'edge-a');
  t.after(a.remove);
  const b = await nodeAgentToken(info, 'edge-b');
  t.after(b.remove);
  return { ns: ns.name, a, b };
}

// Its own control plane: the policy refuses slice writes of every agent token
// not bound to a node, which other files' agents use.
let controlPlane: ControlPlane | undefined;
after(async () => {
  await controlPlane?.stop();
});
const setup = lazy(async () => {
  const own = await privateControlPlane('deviceslice-admission');
  controlPlane = own.controlPlane;
  const info = own.info;
  await installCrds(info);
  await installSliceAccess(info);
  return info;
});

/**
 * Waits until the policy is in force: the API server loads policies from an
 * informer, so a dry run that it must refuse is retried until it is refused.
 */
async function policyInForce(ns: string, a: NodeAgentToken, b: NodeAgentToken): Promise<void> {
  const deadline = Date.now() + 30000;
  for (;;) {
    const accepted = await objects(a.kubeConfig)
      .createNamespacedCustomObject({ ...kind, namespace: ns, body: slice(b.node), dryRun: 'All' })
      .then(
        () => true,
        (err: unknown) => {
          if (err instanceof ApiException && err.code === 422) return false;
          throw err;
        },
      );
    if (!accepted) return;
    if (Date.now() > deadline)
      throw new Error('the DeviceSlice admission policy did not take effect within 30 s');
    await sleep(200);
  }
}

describe('the DeviceSlice admission policy (manifests/admission/)', () => {
  it("lets agent A write node A's slice and refuses it node B's, with the policy's message", async (t) => {
    const info = await setup();
    const { ns, a, b } = await twoAgents(t, info);
    await policyInForce(ns, a, b);

    const created = (await objects(a.kubeConfig).createNamespacedCustomObject({
      ...kind,
      namespace: ns,
      body: slice(a.node),
    })) as DeviceSlice;
    assert.equal(created.spec.node, a.node);

    const refused = await refusal(
      objects(a.kubeConfig).createNamespacedCustomObject({
        ...kind,
        namespace: ns,
        body: slice(b.node),
      }),
    );
    assert.equal(refused.code, 422);
    assert.match(
      refused.message,
      new RegExp(
        `ValidatingAdmissionPolicy 'edgebridge-agent-own-node-slices'.*the agent on node ${a.node} may write only DeviceSlices labelled edgebridge.io/node=${a.node}, not edgebridge.io/node=${b.node}`,
      ),
    );

    // B's own agent may.
    await objects(b.kubeConfig).createNamespacedCustomObject({
      ...kind,
      namespace: ns,
      body: slice(b.node),
    });
  });

  it("refuses agent A changing, relabelling or deleting node B's slice, and relabelling its own", async (t) => {
    const info = await setup();
    const { ns, a, b } = await twoAgents(t, info);
    await policyInForce(ns, a, b);
    await objects(a.kubeConfig).createNamespacedCustomObject({
      ...kind,
      namespace: ns,
      body: slice(a.node),
    });
    await objects(b.kubeConfig).createNamespacedCustomObject({
      ...kind,
      namespace: ns,
      body: slice(b.node),
    });
    const patch = (kc: KubeConfig, name: string, body: object) =>
      objects(kc).patchNamespacedCustomObject({ ...kind, namespace: ns, name, body }, mergePatch);
    const notYours = new RegExp(
      `the agent on node ${a.node} may change or delete only DeviceSlices labelled edgebridge.io/node=${a.node}, not edgebridge.io/node=${b.node}`,
    );

    // One at a time, in order: each call starts only when its case comes.
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      [
        "changing B's devices",
        () => patch(a.kubeConfig, `cams-${b.node}`, { spec: { devices: [], deviceCount: 0 } }),
        notYours,
      ],
      [
        "relabelling B's slice as A's",
        () =>
          patch(a.kubeConfig, `cams-${b.node}`, { metadata: { labels: { [LABEL_NODE]: a.node } } }),
        notYours,
      ],
      [
        "deleting B's slice",
        () =>
          objects(a.kubeConfig).deleteNamespacedCustomObject({
            ...kind,
            namespace: ns,
            name: `cams-${b.node}`,
          }),
        notYours,
      ],
      [
        "relabelling its own slice as B's",
        () =>
          patch(a.kubeConfig, `cams-${a.node}`, { metadata: { labels: { [LABEL_NODE]: b.node } } }),
        new RegExp(
          `may write only DeviceSlices labelled edgebridge.io/node=${a.node}, not edgebridge.io/node=${b.node}`,
        ),
      ],
      [
        'removing its own node label',
        () =>
          patch(a.kubeConfig, `cams-${a.node}`, { metadata: { labels: { [LABEL_NODE]: null } } }),
        new RegExp(
          `may write only DeviceSlices labelled edgebridge.io/node=${a.node}, not edgebridge.io/node=$`,
        ),
      ],
      [
        "creating a slice labelled A's whose spec.node is B",
        () =>
          objects(a.kubeConfig).createNamespacedCustomObject({
            ...kind,
            namespace: ns,
            body: {
              ...slice(a.node, b.node),
              metadata: { ...slice(a.node).metadata, name: 'mixed' },
            },
          }),
        new RegExp(`may write only DeviceSlices whose spec.node is ${a.node}`),
      ],
    ];
    for (const [what, call, message] of cases) {
      const { code, message: got } = await refusal(call());
      assert.equal(code, 422, what);
      assert.match(got, message, what);
    }

    // What it may do with its own.
    await patch(a.kubeConfig, `cams-${a.node}`, { spec: { devices: [], deviceCount: 0 } });
    await objects(a.kubeConfig).deleteNamespacedCustomObject({
      ...kind,
      namespace: ns,
      name: `cams-${a.node}`,
    });
  });

  it('refuses the agent account with a token that names no node', async (t) => {
    const info = await setup();
    const { ns, a, b } = await twoAgents(t, info);
    await policyInForce(ns, a, b);
    // The harness's static token: the agent's user name, but no Pod or Node behind it.
    const { code, message } = await refusal(
      objects(kubeConfigFor(info, 'agent')).createNamespacedCustomObject({
        ...kind,
        namespace: ns,
        body: slice(a.node),
      }),
    );
    assert.equal(code, 422);
    assert.match(message, /the agent's token names no node/);
  });

  it('leaves admins unaffected, and lets the controller only read and delete slices', async (t) => {
    const info = await setup();
    const { ns, a, b } = await twoAgents(t, info);
    await policyInForce(ns, a, b);
    const admin = objects(kubeConfigFor(info, 'admin'));
    await admin.createNamespacedCustomObject({ ...kind, namespace: ns, body: slice(a.node) });
    await admin.createNamespacedCustomObject({ ...kind, namespace: ns, body: slice('gone-node') });

    const controller = objects(kubeConfigFor(info, 'controller'));
    const listed = (await controller.listNamespacedCustomObject({ ...kind, namespace: ns })) as {
      items: DeviceSlice[];
    };
    assert.deepEqual(listed.items.map((s) => s.spec.node).sort(), [a.node, 'gone-node'].sort());
    await controller.deleteNamespacedCustomObject({
      ...kind,
      namespace: ns,
      name: 'cams-gone-node',
    });
    const created = await refusal(
      controller.createNamespacedCustomObject({ ...kind, namespace: ns, body: slice('other') }),
    );
    assert.equal(created.code, 403);
    const changed = await refusal(
      controller.patchNamespacedCustomObject(
        {
          ...kind,
          namespace: ns,
          name: `cams-${a.node}`,
          body: { spec: { devices: [], deviceCount: 0 } },
        },
        mergePatch,
      ),
    );
    assert.equal(changed.code, 403);
  });
});
