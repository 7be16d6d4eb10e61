import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ControlPlaneInfo } from './control-plane.ts';

const run = promisify(execFile);

/** Runs kubectl of the control plane's release as admin. */
export function kubectlAsAdmin(
  info: ControlPlaneInfo,
  ...args: string[]
): Promise<{ stdout: string; stderr: string }> {
  return run(info.kubectl, ['--kubeconfig', info.kubeconfigs.admin, ...args]);
}

/**
 * Server-side applies manifest files as admin: idempotent, and safe while other
 * test files (processes) apply the same files, where create-then-replace would
 * fail on AlreadyExists or race on resourceVersion.
 */
export async function applyManifests(info: ControlPlaneInfo, paths: string[]): Promise<void> {
  await kubectlAsAdmin(
    info,
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=edgebridge-test',
    ...paths.flatMap((p) => ['-f', p]),
  );
}

/**
 * Runs `install` once per control plane in this process; a failure is reported
 * to its caller and retried by the next one.
 */
export function oncePerControlPlane(
  install: (info: ControlPlaneInfo) => Promise<void>,
): (info: ControlPlaneInfo) => Promise<void> {
  const done = new Map<string, Promise<void>>();
  return (info) => {
    let p = done.get(info.server);
    if (p === undefined) {
      p = install(info);
      done.set(info.server, p);
      void p.catch(() => done.delete(info.server));
    }
    return p;
  };
}
