import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ControlPlaneInfo } from './control-plane.ts';
import { kubeConfigFor } from './kube.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { scratchDir } from './workdir.ts';

/** Where the agent's ServiceAccount lives (manifests/rbac/service-accounts.yaml). */
const AGENT_NAMESPACE = 'edgebridge-system';
const AGENT_SERVICE_ACCOUNT = 'edgebridge-agent';
const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

export interface NodeAgentToken {
  node: string;
  token: string;
  /** A kubeconfig file that authenticates with the token. */
  kubeconfig: string;
  kubeConfig: KubeConfig;
  /** Deletes the Pod and the Node (which ends the token). Idempotent. */
  remove: () => Promise<void>;
}

/**
 * What a DaemonSet pod's agent authenticates with: a Node object named
 * `<prefix>-<random>`, a Pod of the agent's ServiceAccount bound to it
 * (spec.nodeName; it never runs, there is no kubelet) and a TokenRequest bound
 * to that Pod, so that the API server puts the node's name in the token. Needs
 * the agent RBAC (its ServiceAccount) installed. Fails with a clear message if
 * the API server leaves the node name out.
 */
export async function nodeAgentToken(
  info: ControlPlaneInfo,
  prefix: string,
): Promise<NodeAgentToken> {
  const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
  const node = `${prefix}-${randomBytes(3).toString('hex')}`;
  const podName = `agent-${node}`;
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    // Grace 0: with no kubelet to confirm, a bound Pod would otherwise stay Terminating.
    await core
      .deleteNamespacedPod({ name: podName, namespace: AGENT_NAMESPACE, gracePeriodSeconds: 0 })
      .catch(() => undefined);
    await core.deleteNode({ name: node }).catch(() => undefined);
  };
  try {
    await core.createNode({
      body: { metadata: { name: node, labels: { 'edgebridge.io/test': 'true' } } },
    });
    const pod = await core.createNamespacedPod({
      namespace: AGENT_NAMESPACE,
      body: {
        metadata: { name: podName, labels: { 'edgebridge.io/test': 'true' } },
        spec: {
          nodeName: node,
          serviceAccountName: AGENT_SERVICE_ACCOUNT,
          automountServiceAccountToken: false,
          containers: [{ name: 'agent', image: 'example.invalid/edgebridge:test' }],
        },
      },
    });
    const request = await core.createNamespacedServiceAccountToken({
      name: AGENT_SERVICE_ACCOUNT,
      namespace: AGENT_NAMESPACE,
      body: {
        spec: {
          audiences: [],
          expirationSeconds: 3600,
          boundObjectRef: {
            kind: 'Pod',
            apiVersion: 'v1',
            name: podName,
            uid: pod.metadata?.uid ?? '',
          },
        },
      },
    });
    const token = request.status?.token ?? '';
    const kubeconfig = path.join(scratchDir('node-agent-token'), `${node}.kubeconfig`);
    writeKubeconfig(kubeconfig, {
      server: info.server,
      caFile: info.caFile,
      user: `agent-${node}`,
      token,
    });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfig);
    // The harness's promise: the token carries the node, or the tests say why not.
    const review = await kubeConfig
      .makeApiClient(AuthenticationV1Api)
      .createSelfSubjectReview({ body: {} });
    const named = review.status?.userInfo?.extra?.[NODE_NAME_EXTRA];
    if (named?.[0] !== node) {
      throw new Error(
        `the API server put no node name (${NODE_NAME_EXTRA}: ${JSON.stringify(named)}) in a token bound to a Pod on Node ${node}; kube-apiserver ${info.version} needs ServiceAccountTokenPodNodeInfo and a service-account signing key`,
      );
    }
    return { node, token, kubeconfig, kubeConfig, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
