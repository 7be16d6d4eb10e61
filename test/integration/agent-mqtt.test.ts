import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { deviceName } from '../../src/api/names.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { eventually } from '../harness/devices.ts';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';
import { waitFor } from '../harness/mqtt-peers.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { scratchDir } from '../harness/workdir.ts';

// The whole path once through a standalone agent: a sensor on mosquitto
// announces itself (Home Assistant discovery) -> a Device in the embedded
// registry -> its reading on the Device's data topic of the agent's node
// broker -> a pod's command reaches the sensor's cmd_t (a pod without a grant
// for the Device is refused) -> the announcement is withdrawn -> the Device
// is gone after the grace period.

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const NODE = 'edge-mqtt';
const SENSOR_ID = 'homeassistant:id:boiler-1';
const DEVICE = deviceName('sensors', SENSOR_ID, false, NODE);

async function deviceNames(stateDir: string): Promise<string[]> {
  const { stdout } = await run(process.execPath, [
    CLI,
    'devices',
    '--standalone',
    '--state-dir',
    stateDir,
    '-o',
    'json',
  ]);
  return (JSON.parse(stdout) as { items: { metadata: { name: string } }[] }).items.map(
    (d) => d.metadata.name,
  );
}

describe('the mqtt handler in a standalone agent', () => {
  let sensors: Mosquitto | undefined;
  let agent: AgentProcess | undefined;
  const clients: MqttClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await agent?.stop();
    await sensors?.stop();
  });

  it('turns an announcement into a Device with data and commands, and removes it after the grace period', async () => {
    sensors = await startMosquitto({ name: 'mqtt-sensors' });
    const dir = scratchDir('agent-mqtt');
    const stateDir = path.join(dir, 'state');
    const config = path.join(dir, 'edgebridge.yaml');
    writeStandaloneConfig(config, {
      discoveries: [
        {
          namespace: 'default',
          name: 'sensors',
          spec: {
            handler: {
              name: 'mqtt',
              details: { brokerUrl: sensors.url, conventions: ['homeassistant'] },
            },
            gracePeriodSeconds: 1,
          },
        },
      ],
      secrets: [
        { namespace: 'default', name: 'users', stringData: { pod: 'pod-pw', other: 'other-pw' } },
      ],
    });
    const brokerConfig = path.join(dir, 'broker.yaml');
    const user = (name: string, devices: string[]) => ({
      name,
      passwordFrom: { secretKeyRef: { namespace: 'default', name: 'users', key: name } },
      devices: [{ namespace: 'default', names: devices, publish: true }],
    });
    writeFileSync(
      brokerConfig,
      stringify({ users: [user('pod', [DEVICE]), user('other', ['sensors-0000000000'])] }),
    );
    agent = await startAgent({
      node: NODE,
      registryArgs: ['--standalone', '--config', config, '--state-dir', stateDir],
      extraArgs: ['--broker-config', brokerConfig],
    });
    const nodeBroker = agent.brokerUrl ?? assert.fail('no embedded broker');

    const sensor = await connectAsync(sensors.url, { clientId: 'boiler' });
    clients.push(sensor);
    const commands: string[] = [];
    await sensor.subscribeAsync('boiler/mode/set', { qos: 1 });
    sensor.on('message', (topic, payload) => {
      if (topic === 'boiler/mode/set') commands.push(payload.toString());
    });
    await sensor.publishAsync(
      'homeassistant/select/boiler/mode/config',
      JSON.stringify({
        name: 'Mode',
        stat_t: 'boiler/mode',
        cmd_t: 'boiler/mode/set',
        ops: ['eco', 'comfort'],
        dev: { ids: 'boiler-1', mf: 'Acme', mdl: 'B1' },
      }),
      { qos: 1, retain: true },
    );
    await eventually('the Device', async () =>
      (await deviceNames(stateDir)).includes(DEVICE) ? true : undefined,
    );

    const pod = await connectAsync(nodeBroker, {
      clientId: 'pod',
      username: 'pod',
      password: 'pod-pw',
    });
    clients.push(pod);
    const readings: string[] = [];
    pod.on('message', (topic, payload) => {
      if (topic === `edgebridge/v1/default/${DEVICE}/data`) readings.push(payload.toString());
    });
    await pod.subscribeAsync(`edgebridge/v1/default/${DEVICE}/data`, { qos: 1 });
    // The reading is not retained: send until the pod's subscription is in place.
    for (let i = 0; i < 50 && readings.length === 0; i++) {
      await sensor.publishAsync('boiler/mode', 'eco', { qos: 1 });
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(readings.length > 0, 'a reading on the data topic');
    const reading = JSON.parse(readings[0] ?? '') as { ts: number; values: unknown };
    assert.deepEqual(reading.values, { mode: 'eco' });

    // A pod granted the Device commands it; the handler forwards to cmd_t.
    await pod.publishAsync(`edgebridge/v1/default/${DEVICE}/commands/mode`, 'comfort', { qos: 1 });
    await waitFor('the command at the sensor', () => commands.includes('comfort'), 30_000);

    // A pod without a grant for it is refused, and nothing reaches the sensor.
    const other = await connectAsync(nodeBroker, {
      clientId: 'other',
      username: 'other',
      password: 'other-pw',
      protocolVersion: 5,
    });
    clients.push(other);
    const refused = await other
      .publishAsync(`edgebridge/v1/default/${DEVICE}/commands/mode`, 'eco-hack', { qos: 1 })
      .then(
        (packet) => ((packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0) >= 0x80,
        () => true,
      );
    assert.ok(refused, 'an ungranted command is refused');
    await pod.publishAsync(`edgebridge/v1/default/${DEVICE}/commands/mode`, 'after', { qos: 1 });
    await waitFor('a later granted command', () => commands.includes('after'), 30_000);
    assert.ok(!commands.includes('eco-hack'), 'the refused command never reached the sensor');

    await sensor.publishAsync('homeassistant/select/boiler/mode/config', '', {
      qos: 1,
      retain: true,
    });
    await eventually('the Device gone', async () =>
      (await deviceNames(stateDir)).includes(DEVICE) ? undefined : true,
    );
  });
});

// The default: no brokerUrl, so the sensors publish to the agent's embedded
// node broker, as the broker config's sensor grant allows; the handler reads
// them in-process. A sensor may publish only what its grant names, and a pod
// granted the Device still reads neither the sensors' topics nor another device.
describe('the mqtt handler on the embedded node broker (the default)', () => {
  let agent: AgentProcess | undefined;
  const clients: MqttClient[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await agent?.stop();
  });

  it('registers a granted sensor and republishes its readings; refuses what no grant allows', async () => {
    const dir = scratchDir('agent-mqtt-embedded');
    const stateDir = path.join(dir, 'state');
    const config = path.join(dir, 'edgebridge.yaml');
    writeStandaloneConfig(config, {
      discoveries: [
        {
          namespace: 'default',
          name: 'sensors',
          spec: {
            handler: { name: 'mqtt', details: { conventions: ['homeassistant'] } },
            gracePeriodSeconds: 1,
          },
        },
      ],
      secrets: [
        {
          namespace: 'default',
          name: 'users',
          stringData: { boiler: 'boiler-pw', pod: 'pod-pw' },
        },
      ],
    });
    const brokerConfig = path.join(dir, 'broker.yaml');
    const passwordFrom = (key: string) => ({
      secretKeyRef: { namespace: 'default', name: 'users', key },
    });
    writeFileSync(
      brokerConfig,
      stringify({
        users: [
          {
            name: 'boiler',
            passwordFrom: passwordFrom('boiler'),
            sensorTopics: {
              publish: ['homeassistant/select/boiler/#', 'boiler/#'],
              subscribe: ['boiler/+/set'],
            },
          },
          {
            name: 'pod',
            passwordFrom: passwordFrom('pod'),
            devices: [{ namespace: 'default', names: [DEVICE], publish: true }],
          },
        ],
      }),
    );
    agent = await startAgent({
      node: NODE,
      registryArgs: ['--standalone', '--config', config, '--state-dir', stateDir],
      extraArgs: ['--broker-config', brokerConfig],
    });
    const nodeBroker = agent.brokerUrl ?? assert.fail('no embedded broker');

    const sensor = await connectAsync(nodeBroker, {
      clientId: 'boiler',
      username: 'boiler',
      password: 'boiler-pw',
      protocolVersion: 5,
    });
    clients.push(sensor);
    const commands: string[] = [];
    const granted = await sensor.subscribeAsync('boiler/mode/set', { qos: 1 });
    assert.equal(granted[0]?.qos, 1, 'the sensor may subscribe to its command topic');
    sensor.on('message', (topic, payload) => {
      if (topic === 'boiler/mode/set') commands.push(payload.toString());
    });
    await sensor.publishAsync(
      'homeassistant/select/boiler/mode/config',
      JSON.stringify({
        name: 'Mode',
        stat_t: 'boiler/mode',
        cmd_t: 'boiler/mode/set',
        ops: ['eco', 'comfort'],
        dev: { ids: 'boiler-1', mf: 'Acme', mdl: 'B1' },
      }),
      { qos: 1, retain: true },
    );
    await eventually('the Device', async () =>
      (await deviceNames(stateDir)).includes(DEVICE) ? true : undefined,
    );

    const pod = await connectAsync(nodeBroker, {
      clientId: 'pod',
      username: 'pod',
      password: 'pod-pw',
      protocolVersion: 5,
    });
    clients.push(pod);
    const readings: string[] = [];
    const seen: string[] = [];
    pod.on('message', (topic, payload) => {
      seen.push(topic);
      if (topic === `edgebridge/v1/default/${DEVICE}/data`) readings.push(payload.toString());
    });
    await pod.subscribeAsync(`edgebridge/v1/default/${DEVICE}/data`, { qos: 1 });
    for (let i = 0; i < 50 && readings.length === 0; i++) {
      await sensor.publishAsync('boiler/mode', 'eco', { qos: 1 });
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(readings.length > 0, 'a reading on the data topic');
    assert.deepEqual((JSON.parse(readings[0] ?? '') as { values: unknown }).values, {
      mode: 'eco',
    });

    // Commands go back through the node broker to the sensor's cmd_t.
    await pod.publishAsync(`edgebridge/v1/default/${DEVICE}/commands/mode`, 'comfort', { qos: 1 });
    await waitFor('the command at the sensor', () => commands.includes('comfort'), 30_000);

    // The pod may read neither the sensors' topics nor another device's (MQTT 5: SUBACK 0x87).
    const refused = (client: MqttClient, filter: string): Promise<boolean> =>
      client.subscribeAsync(filter, { qos: 1 }).then(
        (answers) => (answers[0]?.qos ?? 0) >= 0x80,
        (err: unknown) => /not authori[sz]ed/i.test((err as Error).message),
      );
    for (const filter of ['homeassistant/#', 'boiler/#', '#', 'edgebridge/v1/default/+/data'])
      assert.ok(await refused(pod, filter), `the pod may not subscribe to ${filter}`);
    // Nor may the sensor read device topics or sensor topics beyond its grant.
    for (const filter of [`edgebridge/v1/default/${DEVICE}/data`, 'homeassistant/#'])
      assert.ok(await refused(sensor, filter), `the sensor may not subscribe to ${filter}`);

    // A publish outside its grant is refused (MQTT 5: PUBACK 0x87), and the handler never sees it.
    const refusedCode = (topic: string): Promise<number> =>
      sensor
        .publishAsync(topic, JSON.stringify({ stat_t: 'x/state', dev: { ids: 'intruder' } }), {
          qos: 1,
          retain: true,
        })
        .then(
          (ack) => (ack as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
          (err: unknown) => (err as { code?: number }).code ?? 0,
        );
    assert.equal(await refusedCode('homeassistant/sensor/intruder/t/config'), 0x87);
    assert.equal(await refusedCode(`edgebridge/v1/default/${DEVICE}/data`), 0x87);
    // The sensor's own later publishes still pass: the refusal closed nothing.
    await sensor.publishAsync('boiler/mode', 'comfort', { qos: 1 });
    await waitFor('a later reading', () => readings.some((r) => r.includes('comfort')), 30_000);
    assert.deepEqual(
      (await deviceNames(stateDir)).filter((n) => n !== DEVICE),
      [],
      'no Device from the refused announcement',
    );
    assert.ok(
      seen.every((t) => t === `edgebridge/v1/default/${DEVICE}/data`),
      'the pod saw only its device',
    );

    await sensor.publishAsync('homeassistant/select/boiler/mode/config', '', {
      qos: 1,
      retain: true,
    });
    await eventually('the Device gone', async () =>
      (await deviceNames(stateDir)).includes(DEVICE) ? undefined : true,
    );
  });
});
