import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { applyManifests, kubectlAsAdmin, oncePerControlPlane } from './kubectl.ts';

/** The generated CRD files, as an operator would apply them. */
export const CRD_DIR = path.resolve(import.meta.dirname, '..', '..', 'manifests', 'crds');
export const CRD_NAMES = [
  'discoveries.edgebridge.io',
  'devices.edgebridge.io',
  'deviceslices.edgebridge.io',
] as const;

/**
 * Installs the edgebridge CRDs from manifests/crds/ as admin and resolves once
 * all are Established and served. Idempotent and safe across test processes.
 */
export const installCrds = oncePerControlPlane(async (info) => {
  const kubectl = (...args: string[]) => kubectlAsAdmin(info, ...args);
  await applyManifests(info, [CRD_DIR]);
  await kubectl(
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    ...CRD_NAMES.map((name) => `crd/${name}`),
  );
  // Established comes before the resources' storage is ready: until it is, the
  // API server answers 429 "storage is (re)initializing". Wait for real lists.
  const deadline = Date.now() + 60_000;
  for (const plural of ['discoveries', 'devices', 'deviceslices']) {
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
});
