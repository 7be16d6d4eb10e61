// The whole data path of one agent: a pod-like client publishes device data to
// the agent's embedded broker, whose PUBACK means "in the spool"; the agent is
// SIGKILLed at random moments; a real mosquitto plays the cloud broker.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync, type IPublishPacket, type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { deviceName } from '../../src/api/names.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';
import { checkOrder, recordArrivals, waitFor, type Recorder } from '../harness/mqtt-peers.ts';
import { freePort } from '../harness/ports.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { scratchDir } from '../harness/workdir.ts';
import { canary } from '../harness/canaries.ts';

const NODE = `uplink-${process.pid}`;
const NS = 'default';
const CLUSTER = 'c1';
const PRODUCER_PASSWORD = canary('producer');

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** A device-side client: publishes `device:n` with QoS 1 and keeps what was acknowledged. */
async function producer(url: string): Promise<{
  acked: Set<string>;
  publish(device: string, n: number): Promise<void>;
  client: MqttClient;
}> {
  // aedes speaks MQTT 3.1.1; reconnect quickly to the restarted agent.
  const client = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 100 });
  client.on('error', () => undefined);
  const acked = new Set<string>();
  return {
    acked,
    client,
    async publish(device, n) {
      const text = `${device}:${n}`;
      try {
        await client.publishAsync(`edgebridge/v1/${NS}/${device}/data`, text, { qos: 1 });
        acked.add(text);
      } catch {
        // Not acknowledged: the test promises nothing for it.
      }
    },
  };
}

/** An agent's files (discoveries, broker users, uplink to `cloudUrl`) and how to start it. */
async function agentWorld(
  cloudUrl: string,
): Promise<{ devices: string[]; brokerPort: number; start: () => Promise<AgentProcess> }> {
  const ids = ['dev-a', 'dev-b', 'dev-c'];
  const devices = ids.map((id) => deviceName('sims', id, true, NODE));
  const dir = scratchDir('agent-uplink');
  const config = path.join(dir, 'edgebridge.yaml');
  writeStandaloneConfig(config, {
    discoveries: [
      {
        namespace: NS,
        name: 'sims',
        spec: {
          handler: { name: 'simulated', details: { devices: ids.map((id) => ({ id })) } },
          uplink: { enabled: true },
        },
      },
    ],
    secrets: [{ namespace: NS, name: 'broker-users', stringData: { producer: PRODUCER_PASSWORD } }],
  });
  const brokerConfig = path.join(dir, 'broker.yaml');
  writeFileSync(
    brokerConfig,
    stringify({
      users: [
        {
          name: 'producer',
          passwordFrom: {
            secretKeyRef: { namespace: NS, name: 'broker-users', key: 'producer' },
          },
          devices: [{ namespace: NS, publish: true }],
        },
      ],
    }),
  );
  const uplinkConfig = path.join(dir, 'uplink.yaml');
  writeFileSync(
    uplinkConfig,
    stringify({
      cluster: CLUSTER,
      cloud: { url: cloudUrl },
      discoveries: true,
      spool: { dir: 'uplink-spool', maxBytes: '64Mi', onFull: 'block', sync: 'group' },
    }),
  );
  const brokerPort = await freePort();
  const start = (): Promise<AgentProcess> =>
    startAgent({
      node: NODE,
      registryArgs: ['--standalone', '--config', config, '--state-dir', path.join(dir, 'state')],
      extraArgs: [
        '--broker-host',
        '127.0.0.1',
        '--broker-port',
        String(brokerPort),
        '--broker-config',
        brokerConfig,
        '--uplink-config',
        uplinkConfig,
        '--log-level',
        'info',
      ],
    });
  return { devices, brokerPort, start };
}

describe('an agent with its embedded broker and an uplink', () => {
  it("an MQTT 5 publish's user properties and content type reach a cloud subscriber; an MQTT 3.1.1 one carries only edgebridge-*", async () => {
    const cloud = await startMosquitto({ name: 'agent-cloud-props' });
    cleanups.push(() => cloud.stop());
    const got: IPublishPacket[] = [];
    const sub = await connectAsync(cloud.url, { protocolVersion: 5, reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync(true));
    sub.on('message', (_topic, _payload, packet) => got.push(packet));
    await sub.subscribeAsync(`edgebridge/${CLUSTER}/${NODE}/#`, { qos: 1 });

    const { devices, brokerPort, start } = await agentWorld(cloud.url);
    const agent = await start();
    cleanups.push(() => agent.stop());
    const url = `mqtt://producer:${PRODUCER_PASSWORD}@127.0.0.1:${brokerPort}`;
    const topic = `edgebridge/v1/${NS}/${devices[0] ?? ''}/data`;
    const v5 = await connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
    cleanups.push(() => v5.endAsync(true));
    await v5.publishAsync(topic, 'v5', {
      qos: 1,
      properties: {
        userProperties: { unit: 'C', site: ['a', 'b'], 'edgebridge-id': 'forged' },
        contentType: 'text/plain',
      },
    });
    const v4 = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => v4.endAsync(true));
    await v4.publishAsync(topic, 'v4', { qos: 1 });

    // The simulated devices publish too: wait for these two by payload.
    const arrived = (payload: string): boolean => got.some((p) => p.payload.toString() === payload);
    await waitFor('both messages at the cloud', () => arrived('v5') && arrived('v4'));
    const byPayload = new Map(got.map((p) => [p.payload.toString(), p.properties]));
    const fromV5 = byPayload.get('v5');
    assert.equal(fromV5?.contentType, 'text/plain');
    const user5 = fromV5?.userProperties ?? {};
    assert.equal(user5.unit, 'C');
    assert.deepEqual(user5.site, ['a', 'b']);
    assert.equal(typeof user5['edgebridge-id'], 'string');
    assert.notEqual(user5['edgebridge-id'], 'forged');
    const fromV4 = byPayload.get('v4');
    assert.equal(fromV4?.contentType, undefined);
    assert.deepEqual(Object.keys(fromV4?.userProperties ?? {}).sort(), [
      'edgebridge-id',
      'edgebridge-timestamp',
    ]);
  });

  it('SIGKILLed at random moments: every acknowledged message reaches the cloud, in order per device', async () => {
    const cloud: Mosquitto = await startMosquitto({
      name: 'agent-cloud',
      extraConfig: ['max_inflight_messages 1000', 'max_queued_messages 0'],
    });
    cleanups.push(() => cloud.stop());
    const recorder: Recorder = await recordArrivals(cloud.url, `edgebridge/${CLUSTER}/${NODE}/#`);
    cleanups.push(() => recorder.close());

    const { devices, brokerPort, start } = await agentWorld(cloud.url);
    let agent = await start();
    cleanups.push(() => agent.stop());

    const prod = await producer(`mqtt://producer:${PRODUCER_PASSWORD}@127.0.0.1:${brokerPort}`);
    cleanups.push(() => prod.client.endAsync(true));
    let producing = true;
    const production = (async () => {
      for (let n = 0; producing; n++) {
        await Promise.all(devices.map((d) => prod.publish(d, n)));
      }
    })();
    const kills = 4;
    for (let k = 0; k < kills; k++) {
      await sleep(500 + Math.floor(Math.random() * 1000));
      agent.process.killNow();
      await agent.process.waitForExit();
      agent = await start();
    }
    await sleep(500);
    producing = false;
    await production;

    assert.ok(prod.acked.size > 0, 'the agent acknowledged nothing');
    await waitFor(
      'every acknowledged message at the cloud',
      () => [...prod.acked].every((k) => recorder.distinct.has(k)),
      120_000,
      () =>
        `${[...prod.acked].filter((k) => !recorder.distinct.has(k)).length} of ${prod.acked.size} missing`,
    );
    const { duplicates, outOfOrder } = checkOrder(recorder.arrivals);
    assert.deepEqual(outOfOrder, []);
    // A kill can repeat at most what was in flight to the cloud (maxInFlight 1000).
    assert.ok(duplicates <= kills * 1000, `${duplicates} duplicates after ${kills} kills`);
    const historical = recorder.arrivals.filter((a) => a.historical).length;
    console.log(
      `agent uplink: ${prod.acked.size} acknowledged, ${recorder.arrivals.length} arrivals, ${duplicates} duplicates, ${historical} historical, ${kills} kills`,
    );
  });
});
