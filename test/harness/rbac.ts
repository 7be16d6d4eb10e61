import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_USERS } from './control-plane.ts';
import { applyManifests, kubectlAsAdmin, oncePerControlPlane } from './kubectl.ts';

const MANIFESTS = path.resolve(import.meta.dirname, '..', '..', 'manifests');

/** The namespace of the service accounts, then manifests/rbac/ (ServiceAccounts, ClusterRole, binding). */
export const RBAC_FILES = [
  path.join(MANIFESTS, 'base', 'namespace.yaml'),
  path.join(MANIFESTS, 'rbac', 'service-accounts.yaml'),
  path.join(MANIFESTS, 'rbac', 'agent-clusterrole.yaml'),
  path.join(MANIFESTS, 'rbac', 'agent-clusterrolebinding.yaml'),
];

/**
 * Applies the agent's RBAC from the manifests as admin, then waits until the
 * API server's authorizer grants the agent token its rights, so that the agent
 * can run with that low-privilege token right away. Idempotent and safe across
 * test processes.
 */
export const installAgentRbac = oncePerControlPlane(async (info) => {
  const kubectl = (...args: string[]) => kubectlAsAdmin(info, ...args);
  await applyManifests(info, RBAC_FILES);
  // The RBAC authorizer reads roles and bindings from an informer cache.
  const deadline = Date.now() + 30000;
  for (;;) {
    const allowed = await kubectl(
      'auth',
      'can-i',
      'list',
      'devices.edgebridge.io',
      '--all-namespaces',
      `--as=${TEST_USERS.agent.name}`,
    ).then(
      () => true,
      (err: unknown) => {
        // `can-i` answers "no" with exit status 1; anything else is a real failure.
        if ((err as { stdout?: string }).stdout?.trim() === 'no') return false;
        throw err;
      },
    );
    if (allowed) return;
    if (Date.now() > deadline) throw new Error('the agent RBAC did not take effect within 30 s');
    await sleep(100);
  }
});

/** The controller's ClusterRole and binding, and the DeviceSlice admission policy. */
export const SLICE_ACCESS_FILES = [
  path.join(MANIFESTS, 'controller', 'rbac.yaml'),
  path.join(MANIFESTS, 'admission', 'deviceslice-node-policy.yaml'),
];

/**
 * Applies the controller's RBAC and the admission policy that keeps each agent
 * to its own node's DeviceSlices, on top of the agent RBAC; waits until the
 * controller's rights take effect. Whether the policy is in force yet, a test
 * learns by a dry run that the policy must refuse.
 */
export const installSliceAccess = oncePerControlPlane(async (info) => {
  await installAgentRbac(info);
  await applyManifests(info, SLICE_ACCESS_FILES);
  const deadline = Date.now() + 30000;
  for (;;) {
    const allowed = await kubectlAsAdmin(
      info,
      'auth',
      'can-i',
      'delete',
      'deviceslices.edgebridge.io',
      '--all-namespaces',
      `--as=${TEST_USERS.controller.name}`,
    ).then(
      () => true,
      (err: unknown) => {
        if ((err as { stdout?: string }).stdout?.trim() === 'no') return false;
        throw err;
      },
    );
    if (allowed) return;
    if (Date.now() > deadline)
      throw new Error('the controller RBAC did not take effect within 30 s');
    await sleep(100);
  }
});
