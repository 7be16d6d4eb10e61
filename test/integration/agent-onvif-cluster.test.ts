// The ONVIF path once against the real control plane: the agent runs in a
// test namespace beside a camera peer (WS-Discovery and SOAP) and reaches the
// API server on the root namespace's loopback through a Unix socket bridge.
// Camera appears -> Device with its SOAP properties -> camera says Bye ->
// Device gone after the grace period; the password (a canary) from a Secret
// appears in no Device and no log.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { canary } from '../harness/canaries.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { createNetwork, type Network } from '../harness/netns.ts';
import type { PeerProcess } from '../harness/processes.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { scratchDir } from '../harness/workdir.ts';
import { unixToTcp } from '../peers/fixtures/tcp-unix-bridge.ts';

const root = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(root, 'src/cli/main.ts');
const CAMERA = path.join(root, 'test/peers/fixtures/onvif-camera/main.ts');
const BRIDGE = path.join(root, 'test/peers/fixtures/tcp-unix-bridge.ts');
const node = `onvif-${process.pid}`;
const uuid = 'c0ffee00-0000-4000-8000-0000000c1a55';

describe('the onvif handler through an agent against a real API server', () => {
  let net: Network | undefined;
  let bridge: Server | undefined;
  let remove: (() => Promise<void>) | undefined;
  let deleteNode: (() => Promise<unknown>) | undefined;
  const processes: PeerProcess[] = [];
  let controller: ControllerProcess | undefined;
  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await controller?.stop();
    await net?.destroy();
    bridge?.close();
    await deleteNode?.().catch(() => undefined);
    await remove?.();
  });

  it('camera appears -> Device with SOAP properties -> Bye -> Device gone after the grace period', async () => {
    const info = await useControlPlane({});
    await installCrds(info);
    await installAgentRbac(info);
    await installControllerRbac(info);
    // The agent writes its slice; the controller (on the root namespace's loopback) makes the Device.
    const ns = await testNamespace(info, 'onvif');
    controller = await startController(info, { namespace: ns.name });
    remove = ns.remove;
    await createReadyNode(info, node);
    const core = kubeConfigFor(info, 'admin').makeApiClient(CoreV1Api);
    deleteNode = () => core.deleteNode({ name: node });
    const password = canary('onvif-password');
    await core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'camera-login' }, stringData: { password } },
    });

    net = await createNetwork({ members: ['agent', 'cam'] });
    const agentNs = net.ns('agent');
    const camNs = net.ns('cam');
    const dir = scratchDir('agent-onvif-cluster');
    // The API server's port, reachable from the agent's namespace at the same address.
    const port = Number(new URL(info.server).port);
    const socket = path.join(dir, 'apiserver.sock');
    bridge = await unixToTcp(socket, port);
    const inside = agentNs.spawn({
      name: 'apiserver-bridge',
      command: process.execPath,
      args: [BRIDGE, String(port), socket],
      logDir: dir,
    });
    processes.push(inside);
    await inside.waitUntil('the bridge', () =>
      inside.tail(5).includes('"ready":true') ? true : undefined,
    );

    const camera = camNs.spawn({
      name: 'onvif-camera',
      command: process.execPath,
      args: [
        CAMERA,
        JSON.stringify({
          address: camNs.address,
          soap: { port: 80 },
          cameras: [
            {
              uuid,
              scopes: ['onvif://www.onvif.org/name/Yard'],
              username: 'admin',
              password,
              digest: true,
            },
          ],
        }),
      ],
      logDir: dir,
    });
    processes.push(camera);
    await camera.waitUntil('the camera peer', () =>
      camera.tail(5).includes('"ready":true') ? true : undefined,
    );

    const agent = agentNs.spawn({
      name: 'agent',
      command: process.execPath,
      args: [
        CLI,
        'agent',
        '--node',
        node,
        '--kubeconfig',
        info.kubeconfigs.agent,
        '--http-port',
        '0',
        '--http-host',
        '127.0.0.1',
        '--no-broker',
        '--log-level',
        'debug',
      ],
      logDir: dir,
    });
    processes.push(agent);

    const objects = edgeObjects(info, ns.name);
    await objects.createDiscovery('cams', {
      handler: {
        name: 'onvif',
        details: { interfaces: [agentNs.ifname], probeTimeoutSeconds: 0.5 },
      },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node } },
      intervalSeconds: 2,
      gracePeriodSeconds: 2,
      properties: [
        { name: 'ONVIF_USERNAME', value: 'admin' },
        {
          name: 'ONVIF_PASSWORD',
          valueFrom: { secretKeyRef: { name: 'camera-login', key: 'password' } },
        },
      ],
    });
    const [device] = await eventually(
      'the described camera as a Device',
      async () => {
        const list = await objects.devices('cams');
        // A Device and its status.nodes are two writes: wait for both.
        return list[0]?.spec.properties?.ONVIF_AUTH === 'ok' &&
          (list[0].status?.nodes?.length ?? 0) > 0
          ? list
          : undefined;
      },
      90_000,
    );
    assert.equal(device?.spec.id, `urn:uuid:${uuid}`);
    assert.equal(device.spec.handler, 'onvif');
    assert.equal(device.spec.shared, true);
    const p = device.spec.properties ?? {};
    assert.equal(p.ONVIF_NAME, 'Yard');
    assert.equal(p.ONVIF_SERIAL, 'SN-0c1a55');
    assert.equal(p.ONVIF_MODEL, 'EB-CAM 2000/X');
    assert.equal(p.ONVIF_STREAM_URI_PROFILE_1, `rtsp://${camNs.address}:554/stream/profile_1`);
    assert.equal(device.metadata.labels?.['onvif.edgebridge.io/model'], 'EB-CAM-2000-X');
    assert.equal(device.metadata.labels['edgebridge.io/handler'], 'onvif');
    assert.deepEqual(
      device.status?.nodes?.map((n) => n.name),
      [node],
    );

    await camera.stop();
    await eventually('the Device to go', async () =>
      (await objects.devices('cams')).length === 0 ? true : undefined,
    );
    assert.ok(!JSON.stringify(device).includes(password), 'the password in a Device');
    assert.ok(
      !readFileSync(agent.logFile, 'utf8').includes(password),
      'the password in the agent log',
    );
  });
});
