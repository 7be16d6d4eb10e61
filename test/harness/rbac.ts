import { execFile } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { TEST_USERS, type ControlPlaneInfo } from './control-plane.ts';

const run = promisify(execFile);

const MANIFESTS = path.resolve(import.meta.dirname, '..', '..', 'manifests');

/** The namespace of the service accounts, then manifests/rbac/ (ServiceAccounts, ClusterRole, binding). */
export const RBAC_FILES = [
  path.join(MANIFESTS, 'base', 'namespace.yaml'),
  path.join(MANIFESTS, 'rbac', 'service-accounts.yaml'),
  path.join(MANIFESTS, 'rbac', 'agent-clusterrole.yaml'),
  path.join(MANIFESTS, 'rbac', 'agent-clusterrolebinding.yaml'),
];

const installed = new Map<string, Promise<void>>();

/**
 * Applies the agent's RBAC from the manifests as admin (server-side apply:
 * idempotent and safe concurrently), then waits until the API server's
 * authorizer grants the agent token its rights, so that the agent can run with
 * that low-privilege token right away. Once per control plane per process.
 */
export function installAgentRbac(info: ControlPlaneInfo): Promise<void> {
  let done = installed.get(info.server);
  if (done === undefined) {
    done = apply(info);
    installed.set(info.server, done);
    void done.catch(() => installed.delete(info.server));
  }
  return done;
}

async function apply(info: ControlPlaneInfo): Promise<void> {
  const kubectl = (...args: string[]) =>
    run(info.kubectl, ['--kubeconfig', info.kubeconfigs.admin, ...args]);
  await kubectl(
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=edgebridge-test',
    ...RBAC_FILES.flatMap((file) => ['-f', file]),
  );
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
}
