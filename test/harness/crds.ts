import { execFile } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { ControlPlaneInfo } from './control-plane.ts';

const run = promisify(execFile);

/** The generated CRD files, as an operator would apply them. */
export const CRD_DIR = path.resolve(import.meta.dirname, '..', '..', 'manifests', 'crds');
export const CRD_NAMES = ['discoveries.edgebridge.io', 'devices.edgebridge.io'] as const;

const installed = new Map<string, Promise<void>>();

/**
 * Installs the edgebridge CRDs from manifests/crds/ as admin and resolves once
 * both are Established. Idempotent, and safe while other test files (processes)
 * install them too: server-side apply with one field manager and --force-conflicts
 * neither fails on AlreadyExists nor races on resourceVersion as create-then-replace
 * would. Once per control plane per process.
 */
export function installCrds(info: ControlPlaneInfo): Promise<void> {
  let done = installed.get(info.server);
  if (done === undefined) {
    done = apply(info);
    installed.set(info.server, done);
    // A failure is reported to this caller and retried by the next one.
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
    '-f',
    CRD_DIR,
  );
  await kubectl(
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...CRD_NAMES.map((name) => `crd/${name}`),
  );
  // Established comes before the resources' storage is ready: until it is, the
  // API server answers 429 "storage is (re)initializing". Wait for real lists.
  const deadline = Date.now() + 60_000;
  for (const plural of ['discoveries', 'devices']) {
    for (;;) {
      try {
        await kubectl('get', `${plural}.edgebridge.io`, '-A', '-o', 'name');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(200);
      }
    }
  }
}
