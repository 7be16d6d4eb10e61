// Time from a ResourceClaim's creation to its allocation by the real
// kube-scheduler, with 1,000 devices published by the DRA driver on one node
// (8 ResourceSlices). Each round creates a claim for one camera by
// manufacturer (CEL) and a pod that uses it; the clock stops when the claim's
// status.allocation names the device. Also: the time to publish the pool.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { deviceClassName, ensureDeviceClass } from '../src/dra/device-class.ts';
import { DraDriver } from '../src/dra/dra-driver.ts';
import type { NodeDevice } from '../src/dra/node-device.ts';
import { draDeviceName } from '../src/dra/resource-slices.ts';
import { KubeClient } from '../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../src/registry/kubernetes/client/kubeconfig.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { createReadyNode } from '../test/harness/kube.ts';

const DEVICES = Number(process.env.DEVICES ?? '1000');
const ROUNDS = Number(process.env.ROUNDS ?? '5');
const node = 'bench-dra-node';
const ns = 'bench-dra';

const dir = mkdtempSync(path.join(tmpdir(), 'edgebridge-bench-dra-'));
const cp = new ControlPlane(path.join(dir, 'control-plane'));
let driver: DraDriver | undefined;
let client: KubeClient | undefined;
try {
  const info = await cp.ensure({ controllerManager: true, scheduler: true });
  client = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
  const kube = client;
  await kube.request('POST', '/api/v1/namespaces', { body: { metadata: { name: ns } } });
  await createReadyNode(info, node);
  const devices: NodeDevice[] = Array.from({ length: DEVICES }, (_, i) => ({
    namespace: ns,
    name: `cams-${String(i).padStart(10, '0')}`,
    spec: {
      discovery: 'cams',
      handler: 'onvif',
      shared: true,
      id: `urn:uuid:${i}`,
      properties: {
        ONVIF_MANUFACTURER: `Acme-${i}`,
        ONVIF_MODEL: 'X100',
        ONVIF_DEVICE_SERVICE_URL: `http://10.0.${i >> 8}.${i & 255}/onvif/device_service`,
      },
    },
    node: {},
  }));
  driver = new DraDriver({
    client: kube,
    node,
    log: pino({ level: 'warn' }),
    cdiDir: path.join(dir, 'cdi'),
    registryDir: path.join(dir, 'reg'),
    pluginDir: path.join(dir, 'plugin'),
    coalesceMs: 0,
  });
  let t = performance.now();
  driver.update(devices);
  await driver.settled();
  const publishMs = performance.now() - t;
  const writes = driver.sliceWrites;
  await ensureDeviceClass(kube, ns, 'cams');
  for (;;) {
    try {
      await kube.request('GET', `/api/v1/namespaces/${ns}/serviceaccounts/default`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const times: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const k = Math.floor(((round + 0.5) * DEVICES) / ROUNDS);
    const claim = `claim-${round}`;
    t = performance.now();
    await kube.request('POST', `/apis/resource.k8s.io/v1/namespaces/${ns}/resourceclaims`, {
      body: {
        metadata: { name: claim },
        spec: {
          devices: {
            requests: [
              {
                name: 'cam',
                exactly: {
                  deviceClassName: deviceClassName(ns, 'cams'),
                  selectors: [
                    {
                      cel: {
                        expression: `device.attributes["edgebridge.io"].manufacturer == "Acme-${k}"`,
                      },
                    },
                  ],
                },
              },
            ],
          },
        },
      },
    });
    await kube.request('POST', `/api/v1/namespaces/${ns}/pods`, {
      body: {
        metadata: { name: `viewer-${round}` },
        spec: {
          resourceClaims: [{ name: 'cam', resourceClaimName: claim }],
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
    for (;;) {
      const c = await kube.request<{
        status?: { allocation?: { devices?: { results?: { device?: string }[] } } };
      }>('GET', `/apis/resource.k8s.io/v1/namespaces/${ns}/resourceclaims/${claim}`);
      const got = c.status?.allocation?.devices?.results?.[0]?.device;
      if (got !== undefined) {
        if (got !== draDeviceName(ns, `cams-${String(k).padStart(10, '0')}`))
          throw new Error(`claim ${claim} got ${got}, not camera ${k}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    times.push(performance.now() - t);
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(
    `DRA allocation with ${DEVICES} devices on one node (kube-scheduler ${info.version})`,
  );
  console.log(`publish the pool: ${publishMs.toFixed(0)} ms, ${writes} ResourceSlice writes`);
  console.log(
    `claim created -> allocated, ${ROUNDS} rounds (ms): min ${sorted[0]?.toFixed(0)} median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} max ${sorted.at(-1)?.toFixed(0)}`,
  );
} finally {
  await driver?.close();
  client?.close();
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
