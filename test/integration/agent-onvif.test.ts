// The whole ONVIF path through a standalone agent: a camera peer (WS-Discovery
// and SOAP) in one namespace, the agent in another, on one bridge. Camera
// appears -> Device with its SOAP properties -> a motion event on the node
// broker's events topic -> the camera leaves -> Device gone after the grace
// period. The agent and its broker live in the agent namespace, which the test
// process cannot reach: an MQTT recorder and the CLI run there beside it.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { eventually } from '../harness/devices.ts';
import { createNetwork, type Network } from '../harness/netns.ts';
import type { PeerProcess } from '../harness/processes.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { scratchDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(root, 'src/cli/main.ts');
const CAMERA = path.join(root, 'test/peers/fixtures/onvif-camera/main.ts');
const RECORDER = path.join(root, 'test/peers/fixtures/mqtt-record.ts');
const NS = 'default';
const PASSWORD = 'cam-Pangolin-5521';
const SECOND_PASSWORD = 'cam-Axolotl-9034';
const WRONG_PASSWORD = 'cam-Narwhal-0001';
const BROKER_PASSWORD = 'ops-Okapi-3318';
const uuid = (n: number): string => `c0ffee00-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

interface DeviceList {
  items: {
    metadata: { name: string; labels?: Record<string, string> };
    spec: { id: string; properties?: Record<string, string> };
  }[];
}

describe('edgebridge agent --standalone with the onvif handler and a camera peer', () => {
  let net: Network | undefined;
  const processes: PeerProcess[] = [];
  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await net?.destroy();
  });

  it('registers cameras with their SOAP properties, republishes a motion event, marks refused credentials, and removes them after the grace period; no password anywhere', async () => {
    net = await createNetwork({ members: ['agent', 'cam'] });
    const agentNs = net.ns('agent');
    const camNs = net.ns('cam');
    const dir = scratchDir('agent-onvif');
    const stateDir = path.join(dir, 'state');
    const config = path.join(dir, 'edgebridge.yaml');
    const brokerConfig = path.join(dir, 'broker.yaml');
    writeStandaloneConfig(config, {
      discoveries: [
        {
          namespace: NS,
          name: 'cams',
          spec: {
            handler: {
              name: 'onvif',
              details: { interfaces: [agentNs.ifname], probeTimeoutSeconds: 0.5 },
            },
            intervalSeconds: 2,
            gracePeriodSeconds: 2,
            properties: [
              { name: 'ONVIF_USERNAME', value: 'admin' },
              {
                name: 'ONVIF_PASSWORD',
                valueFrom: { secretKeyRef: { name: 'camera-login', key: 'password' } },
              },
              {
                name: 'ONVIF_CREDENTIALS',
                valueFrom: { secretKeyRef: { name: 'camera-login', key: 'per-camera' } },
              },
            ],
          },
        },
      ],
      secrets: [
        {
          namespace: NS,
          name: 'camera-login',
          stringData: {
            password: PASSWORD,
            // Camera 2 has its own entry, with a password that is not its own.
            'per-camera': stringify({
              [`urn:uuid:${uuid(2)}`]: { username: 'admin', password: WRONG_PASSWORD },
            }),
          },
        },
        { namespace: NS, name: 'broker-users', stringData: { ops: BROKER_PASSWORD } },
      ],
    });
    writeFileSync(
      brokerConfig,
      stringify({
        users: [
          {
            name: 'ops',
            passwordFrom: { secretKeyRef: { namespace: NS, name: 'broker-users', key: 'ops' } },
            devices: [{ namespace: NS }],
          },
        ],
      }),
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
              uuid: uuid(1),
              scopes: ['onvif://www.onvif.org/name/Door'],
              username: 'admin',
              password: PASSWORD,
            },
            { uuid: uuid(2), username: 'admin', password: SECOND_PASSWORD, digest: true },
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
        'edge-1',
        '--http-port',
        '0',
        '--http-host',
        '127.0.0.1',
        '--broker-port',
        '0',
        '--broker-host',
        '127.0.0.1',
        '--broker-config',
        brokerConfig,
        '--log-level',
        'debug',
        '--standalone',
        '--config',
        config,
        '--state-dir',
        stateDir,
      ],
      logDir: dir,
    });
    processes.push(agent);
    const agentLines = (): Record<string, unknown>[] =>
      readFileSync(agent.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const port = await agent.waitUntil('the node broker', () => {
      const p = agentLines().find((l) => l.msg === 'node broker listening')?.port;
      return typeof p === 'number' ? p : undefined;
    });
    const recorder = agentNs.spawn({
      name: 'mqtt-record',
      command: process.execPath,
      args: [
        RECORDER,
        `mqtt://127.0.0.1:${port}`,
        'ops',
        `edgebridge/v1/${NS}/+/events`,
        `edgebridge/v1/${NS}/+/state`,
      ],
      env: { ...process.env, MQTT_PASSWORD: BROKER_PASSWORD },
      logDir: dir,
    });
    processes.push(recorder);
    await recorder.waitUntil('the MQTT recorder', () =>
      recorder.tail(5).includes('"subscribed":true') ? true : undefined,
    );
    const messages = (): { topic: string; payload: string }[] =>
      readFileSync(recorder.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{"topic"'))
        .map((l) => JSON.parse(l) as { topic: string; payload: string });

    const devicesJson = async (): Promise<string> =>
      (
        await run(process.execPath, [
          CLI,
          'devices',
          '--standalone',
          '--state-dir',
          stateDir,
          '-o',
          'json',
        ])
      ).stdout;
    const devices = async (): Promise<DeviceList> => JSON.parse(await devicesJson()) as DeviceList;
    const byId = (list: DeviceList, n: number) =>
      list.items.find((d) => d.spec.id === `urn:uuid:${uuid(n)}`);

    const listed = await eventually(
      'both cameras, one described and one refused',
      async () => {
        const list = await devices();
        return byId(list, 1)?.spec.properties?.ONVIF_AUTH === 'ok' &&
          byId(list, 2)?.spec.properties?.ONVIF_AUTH === 'failed'
          ? list
          : undefined;
      },
      60_000,
    );
    const one = byId(listed, 1);
    assert.deepEqual(one?.spec.properties, {
      ONVIF_DEVICE_SERVICE_URL: `http://${camNs.address}/onvif/${uuid(1)}/device_service`,
      ONVIF_DEVICE_UUID: uuid(1),
      ONVIF_DEVICE_IP_ADDRESS: camNs.address,
      ONVIF_SCOPES: 'onvif://www.onvif.org/name/Door',
      ONVIF_NAME: 'Door',
      ONVIF_MANUFACTURER: 'Edge & Bridge Cams',
      ONVIF_MODEL: 'EB-CAM 2000/X',
      ONVIF_FIRMWARE: '1.2.3',
      ONVIF_SERIAL: 'SN-000001',
      ONVIF_DEVICE_MAC_ADDRESS: '02:00:5e:10:00:01',
      ONVIF_STREAM_URI_PROFILE_1: `rtsp://${camNs.address}:554/stream/profile_1`,
      ONVIF_SNAPSHOT_URI_PROFILE_1: `http://${camNs.address}/snapshot/profile_1.jpg?user=admin&pwd=REDACTED`,
      ONVIF_STREAM_URI_PROFILE_2_SUB: `rtsp://${camNs.address}:554/stream/profile-2.sub`,
      ONVIF_SNAPSHOT_URI_PROFILE_2_SUB: `http://${camNs.address}/snapshot/profile-2.sub.jpg?user=admin&pwd=REDACTED`,
      ONVIF_AUTH: 'ok',
    });
    assert.equal(one?.metadata.labels?.['onvif.edgebridge.io/manufacturer'], 'Edge---Bridge-Cams');
    assert.equal(one?.metadata.labels?.['onvif.edgebridge.io/model'], 'EB-CAM-2000-X');
    const two = byId(listed, 2);
    assert.equal(
      two?.spec.properties?.ONVIF_DEVICE_SERVICE_URL,
      `http://${camNs.address}/onvif/${uuid(2)}/device_service`,
    );
    assert.equal(two?.spec.properties?.ONVIF_SERIAL, undefined);

    // A motion event on camera 1 reaches its Device's events topic.
    const name = one?.metadata.name ?? '';
    const stats = async (): Promise<Record<string, { pulls: number }>> =>
      JSON.parse(
        (
          await agentNs.exec(process.execPath, [
            '--input-type=module',
            '-e',
            `const r = await fetch('http://${camNs.address}/control/stats'); process.stdout.write(await r.text());`,
          ])
        ).stdout,
      ) as Record<string, { pulls: number }>;
    await eventually('a PullPoint on camera 1', async () =>
      ((await stats())[uuid(1)]?.pulls ?? 0) > 0 ? true : undefined,
    );
    await agentNs.exec(process.execPath, [
      '--input-type=module',
      '-e',
      `await fetch('http://${camNs.address}/control/${uuid(1)}/motion?state=true', { method: 'POST' });`,
    ]);
    const motion = await eventually('the motion event on the events topic', () =>
      Promise.resolve(
        messages().find(
          (m) =>
            m.topic === `edgebridge/v1/${NS}/${name}/events` && m.payload.includes('MotionAlarm'),
        ),
      ),
    );
    const event = JSON.parse(motion.payload) as { topic: string; data: Record<string, string> };
    assert.equal(event.topic, 'tns1:VideoSource/MotionAlarm');
    assert.deepEqual(event.data, { State: 'true' });
    assert.ok(
      messages().some(
        (m) => m.topic === `edgebridge/v1/${NS}/${name}/state` && m.payload === 'online',
      ),
    );

    // The cameras leave (Bye): their Devices go after the grace period, state offline.
    await camera.stop();
    await eventually('the Devices to go', async () =>
      (await devices()).items.length === 0 ? true : undefined,
    );
    await eventually('camera 1 offline', () =>
      Promise.resolve(
        messages().some(
          (m) => m.topic === `edgebridge/v1/${NS}/${name}/state` && m.payload === 'offline',
        )
          ? true
          : undefined,
      ),
    );

    // `scan` with the same credentials prints the described camera, never a password.
    const scanCamera = camNs.spawn({
      name: 'onvif-camera-scan',
      command: process.execPath,
      args: [
        CAMERA,
        JSON.stringify({
          address: camNs.address,
          soap: { port: 80 },
          cameras: [{ uuid: uuid(3), username: 'admin', password: PASSWORD }],
        }),
      ],
      logDir: dir,
    });
    processes.push(scanCamera);
    await scanCamera.waitUntil('the scan camera peer', () =>
      scanCamera.tail(5).includes('"ready":true') ? true : undefined,
    );
    const scan = await agentNs.exec(process.execPath, [
      CLI,
      'scan',
      'onvif',
      '--details',
      JSON.stringify({ interfaces: [agentNs.ifname], probeTimeoutSeconds: 1 }),
      '--property',
      'ONVIF_USERNAME=admin',
      '--property',
      `ONVIF_PASSWORD=${PASSWORD}`,
      '-o',
      'json',
      '--timeout',
      '20',
    ]);
    const scanned = JSON.parse(scan.stdout) as {
      items: { id: string; properties: Record<string, string> }[];
    };
    assert.equal(scanned.items[0]?.id, `urn:uuid:${uuid(3)}`);
    assert.equal(scanned.items[0]?.properties.ONVIF_SERIAL, 'SN-000003');

    const outputs = [
      readFileSync(agent.logFile, 'utf8'),
      readFileSync(recorder.logFile, 'utf8'),
      JSON.stringify(listed),
      scan.stdout,
      scan.stderr,
    ];
    for (const text of outputs)
      for (const secret of [PASSWORD, SECOND_PASSWORD, WRONG_PASSWORD])
        assert.ok(!text.includes(secret), `a camera password in ${text.slice(0, 200)}`);
  });
});
