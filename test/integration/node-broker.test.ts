// The agent's node broker as pods see it: real MQTT clients against the
// agent's embedded broker (standalone, and with ServiceAccount tokens checked
// by TokenReviews against the real API server), and the agent publishing
// through an external mosquitto with --broker-url.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { createConnection } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { promisify } from 'node:util';
import {
  connect as mqttConnect,
  connectAsync,
  type IClientOptions,
  type IConnackPacket,
  type MqttClient,
} from 'mqtt';
import { stringify } from 'yaml';
import { deviceName } from '../../src/api/names.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { installCrds } from '../harness/crds.ts';
import { edgeObjects, eventually } from '../harness/devices.ts';
import { createReadyNode, kubeConfigFor, testNamespace, useControlPlane } from '../harness/kube.ts';
import { kubectlAsAdmin } from '../harness/kubectl.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';
import { installAgentRbac } from '../harness/rbac.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../harness/controller.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { scratchDir } from '../harness/workdir.ts';

const NODE = `broker-${process.pid}`;
const MAX_PACKET = 4096;
const agents: AgentProcess[] = [];
const clients: MqttClient[] = [];
const brokers: Mosquitto[] = [];

after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(brokers.map((b) => b.stop()));
});

/** A pod-like MQTT 3.1.1 client; no reconnects, so that a refusal or a close is final. */
async function client(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectAsync(url, { reconnectPeriod: 0, protocolVersion: 4, ...options });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

/** The CONNACK return code of a refused connection. */
async function refusal(url: string, options: IClientOptions): Promise<number> {
  try {
    const c = await client(url, options);
    await c.endAsync(true);
  } catch (err) {
    return Number((err as { code?: unknown }).code);
  }
  return assert.fail('the broker accepted the client');
}

/** Collects messages as "topic payload" lines, with the retain flag when set. */
function collect(c: MqttClient): string[] {
  const seen: string[] = [];
  c.on('message', (topic, payload, packet) =>
    seen.push(`${topic} ${payload.toString()}${packet.retain ? ' (retained)' : ''}`),
  );
  return seen;
}

/** The SUBACK return codes (mqtt.js rejects a SUBACK with a failure, carrying the packet). */
async function granted(c: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    const codes = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (codes === undefined) throw err;
    return codes;
  }
}

const until = (what: string, condition: () => boolean): Promise<true> =>
  eventually(what, () => Promise.resolve(condition() ? true : undefined), 30000);

const MAX_EXPIRY = 60;
const NS = 'lab';
const north = deviceName('sims', 'cam-north', true, NODE);
const south = deviceName('sims', 'cam-south', true, NODE);
/** One standalone agent for the describes below, with --broker-max-session-expiry 60. */
const setup = lazy(async () => {
  const dir = scratchDir('node-broker');
  const config = path.join(dir, 'edgebridge.yaml');
  writeStandaloneConfig(config, {
    discoveries: [
      {
        namespace: NS,
        name: 'sims',
        spec: {
          handler: {
            name: 'simulated',
            details: {
              devices: [
                { id: 'cam-north', labels: { 'example.com/zone': 'north' } },
                { id: 'cam-south', labels: { 'example.com/zone': 'south' } },
              ],
              publishIntervalMs: 100,
            },
          },
          intervalSeconds: 1,
        },
      },
    ],
    secrets: [
      {
        namespace: NS,
        name: 'broker-users',
        stringData: { reader: 'north-only', ops: 'everything' },
      },
    ],
  });
  const brokerConfig = path.join(dir, 'broker.yaml');
  const secret = (key: string) => ({
    secretKeyRef: { namespace: NS, name: 'broker-users', key },
  });
  writeFileSync(
    brokerConfig,
    stringify({
      maxPacketBytes: MAX_PACKET,
      users: [
        {
          name: 'reader',
          passwordFrom: secret('reader'),
          devices: [{ namespace: NS, selector: { matchLabels: { 'example.com/zone': 'north' } } }],
        },
        { name: 'ops', passwordFrom: secret('ops'), devices: [{ namespace: NS, publish: true }] },
      ],
    }),
  );
  const agent = await startAgent({
    node: NODE,
    registryArgs: ['--standalone', '--config', config, '--state-dir', path.join(dir, 'state')],
    extraArgs: ['--broker-config', brokerConfig, '--broker-max-session-expiry', String(MAX_EXPIRY)],
  });
  agents.push(agent);
  assert.ok(agent.brokerUrl, 'the agent reported no broker');
  // Devices are registered (their labels are what the reader's grant selects on).
  await eventually('the devices to be online', async () => {
    const c = await client(agent.brokerUrl ?? '', { username: 'ops', password: 'everything' });
    const seen = collect(c);
    await c.subscribeAsync(`edgebridge/v1/${NS}/+/state`, { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
    await c.endAsync(true);
    return seen.filter((s) => s.endsWith('online (retained)')).length === 2 ? true : undefined;
  });
  return { agent, url: agent.brokerUrl };
});

for (const version of [4, 5] as const) {
  const v5 = version === 5;
  /** A client of this describe's protocol version. */
  const connect = (url: string, options: IClientOptions = {}): Promise<MqttClient> =>
    client(url, { protocolVersion: version, ...options });

  describe(`the node broker of a standalone agent, MQTT ${v5 ? '5' : '3.1.1'}`, () => {
    it('gives a client with rights its device’s data and retained state', async () => {
      const { url } = await setup();
      const c = await connect(url, { username: 'reader', password: 'north-only' });
      const seen = collect(c);
      assert.deepEqual(await granted(c, [`edgebridge/v1/${NS}/${north}/#`]), [1]);
      await until('state and two samples', () => seen.length >= 3);
      // The retained state is delivered beside live samples, in no promised order.
      assert.ok(
        seen.includes(`edgebridge/v1/${NS}/${north}/state online (retained)`),
        seen.join('\n'),
      );
      const sample = seen.find((s) => s.startsWith(`edgebridge/v1/${NS}/${north}/data `)) ?? '';
      const body = JSON.parse(sample.slice(sample.indexOf(' ') + 1)) as { device: string };
      assert.equal(body.device, 'cam-north');
    });

    it('refuses a subscription to a device the client has no rights to (SUBACK 0x80, 0x87 in MQTT 5) and delivers it nothing', async () => {
      const { url } = await setup();
      const c = await connect(url, { username: 'reader', password: 'north-only' });
      const seen = collect(c);
      const codes = await granted(c, [
        `edgebridge/v1/${NS}/${north}/data`,
        `edgebridge/v1/${NS}/${south}/#`,
        `edgebridge/v1/${NS}/+/data`,
        '#',
      ]);
      const no = v5 ? 0x87 : 0x80;
      assert.deepEqual(codes, [1, no, no, no]);
      // Both devices publish at the same rate: ten of the north's samples means the south's were held back.
      await until('ten samples', () => seen.length >= 10);
      assert.deepEqual(
        seen.filter((s) => !s.startsWith(`edgebridge/v1/${NS}/${north}/data `)),
        [],
      );
    });

    it('refuses anonymous clients (5; 0x87 in MQTT 5), wrong passwords and unknown users (4; 0x86)', async () => {
      const { url, agent } = await setup();
      const [anonymous, bad] = v5 ? [0x87, 0x86] : [5, 4];
      assert.equal(await refusal(url, { protocolVersion: version }), anonymous);
      assert.equal(
        await refusal(url, {
          protocolVersion: version,
          username: 'reader',
          password: 'everything',
        }),
        bad,
      );
      assert.equal(
        await refusal(url, {
          protocolVersion: version,
          username: 'nobody',
          password: 'north-only',
        }),
        bad,
      );
      assert.ok((await agent.metric('edgebridge_broker_auth_failures_total')) >= 3);
    });

    it('carries a publish from a client with a publish grant to a subscriber with rights', async () => {
      const { url } = await setup();
      const reader = await connect(url, { username: 'reader', password: 'north-only' });
      const seen = collect(reader);
      await reader.subscribeAsync(`edgebridge/v1/${NS}/${north}/data/annotations`, { qos: 1 });
      const ops = await connect(url, { username: 'ops', password: 'everything' });
      await ops.publishAsync(`edgebridge/v1/${NS}/${north}/data/annotations`, 'person at door', {
        qos: 1,
      });
      await until('the annotation', () => seen.length === 1);
      assert.deepEqual(seen, [`edgebridge/v1/${NS}/${north}/data/annotations person at door`]);
    });

    it(
      v5
        ? 'closes a client that sends an oversized packet; refuses foreign or forbidden topics with PUBACK 0x87 and keeps the client; logs each, and carries on'
        : 'closes clients that send bad input (oversized packets, foreign or forbidden topics), logs each, and carries on',
      async () => {
        const { url, agent } = await setup();
        // The agent is shared by both protocol versions: its counts are compared before and after.
        const tooLarge = await agent.metric('edgebridge_broker_client_errors_total', {
          kind: 'too_large',
        });
        const refusedBefore = await agent.metric('edgebridge_broker_refused_total', {
          action: 'publish',
        });
        const watcher = await connect(url, { username: 'reader', password: 'north-only' });
        const seen = collect(watcher);
        await watcher.subscribeAsync(`edgebridge/v1/${NS}/${north}/data`, { qos: 1 });

        const attempts: [string, IClientOptions, string, Buffer | string, { retain?: boolean }][] =
          [
            [
              'oversized',
              { username: 'ops', password: 'everything' },
              `edgebridge/v1/${NS}/${north}/data`,
              Buffer.alloc(MAX_PACKET * 4),
              {},
            ],
            [
              'foreign topic',
              { username: 'ops', password: 'everything' },
              'elsewhere/topic',
              'x',
              {},
            ],
            [
              'state topic',
              { username: 'ops', password: 'everything' },
              `edgebridge/v1/${NS}/${north}/state`,
              'offline',
              {},
            ],
            [
              'retained',
              { username: 'ops', password: 'everything' },
              `edgebridge/v1/${NS}/${north}/data`,
              'x',
              { retain: true },
            ],
            [
              'no publish grant',
              { username: 'reader', password: 'north-only' },
              `edgebridge/v1/${NS}/${north}/data`,
              'x',
              {},
            ],
          ];
        for (const [what, options, topic, payload, flags] of attempts) {
          const c = await connect(url, options);
          if (v5 && what !== 'oversized') {
            await assert.rejects(
              c.publishAsync(topic, payload, { qos: 1, ...flags }),
              (err: { code?: unknown }) => err.code === 0x87,
              what,
            );
            assert.ok(c.connected, `${what}: the client was disconnected`);
            continue;
          }
          const closed = new Promise<void>((r) => c.once('close', () => r()));
          c.publish(topic, payload, { qos: 1, ...flags });
          await closed;
          assert.ok(c.disconnected || !c.connected, what);
        }
        // The agent writes its log asynchronously: the last lines may trail the closes.
        const refusalLine = v5
          ? 'publish refused (MQTT 5: PUBACK 0x87, connection kept)'
          : 'publish refused; closing the client connection';
        const refusedLines = (): number =>
          agent.logLines().filter((l) => l.msg === refusalLine).length;
        await until('four refusals in the log', () => refusedLines() >= 4);
        assert.equal(refusedLines(), 4);
        assert.ok(
          agent
            .logLines()
            .some(
              (l) =>
                l.msg === 'client connection closed' &&
                String(l.err).includes('larger than the limit'),
            ),
          'no line for the oversized packet',
        );
        assert.equal(
          await agent.metric('edgebridge_broker_client_errors_total', { kind: 'too_large' }),
          tooLarge + 1,
        );
        assert.equal(
          await agent.metric('edgebridge_broker_refused_total', { action: 'publish' }),
          refusedBefore + 4,
        );
        // The broker and the device data go on.
        const before = seen.length;
        await until('more samples after the bad clients', () => seen.length >= before + 3);
        assert.equal((await agent.get('/healthz')).status, 200);
      },
    );
  });
}

/** A client's CONNACK, for its MQTT 5 properties. */
async function connack(url: string, options: IClientOptions): Promise<IConnackPacket> {
  const c = mqttConnect(url, { reconnectPeriod: 0, protocolVersion: 5, ...options });
  clients.push(c);
  c.on('error', () => undefined);
  const [packet] = [await new Promise<IConnackPacket>((r) => c.once('connect', r))];
  return packet;
}

/** The SUBACK codes for filters sent by a bare MQTT 5 client (no client-side checks on them). */
async function rawSuback(
  url: string,
  auth: { username: string; password: string },
  filters: string[],
): Promise<number[]> {
  const { hostname, port } = new URL(url);
  const socket = createConnection(Number(port), hostname);
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  try {
    const suback = new Promise<number[]>((resolve, reject) => {
      parser.on('packet', (packet: mqttPacket.Packet) => {
        if (packet.cmd === 'connack' && packet.reasonCode !== 0)
          reject(new Error(`CONNACK ${String(packet.reasonCode)}`));
        if (packet.cmd === 'suback') resolve(packet.granted as number[]);
      });
      socket.on('data', (chunk: Buffer) => parser.parse(chunk));
      socket.on('error', reject);
      socket.on('close', () => reject(new Error('connection closed before the SUBACK')));
    });
    const v5 = { protocolVersion: 5 } as const;
    socket.write(
      mqttPacket.generate(
        {
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 5,
          clean: true,
          keepalive: 30,
          clientId: `raw-${process.pid}`,
          username: auth.username,
          password: Buffer.from(auth.password),
        },
        v5,
      ),
    );
    socket.write(
      mqttPacket.generate(
        {
          cmd: 'subscribe',
          messageId: 1,
          subscriptions: filters.map((topic) => ({ topic, qos: 1 })),
        },
        v5,
      ),
    );
    return await suback;
  } finally {
    socket.destroy();
  }
}

const run = promisify(execFile);

/** mosquitto's command-line client as an MQTT 5 peer; its output and exit code, never a throw. */
async function mosquittoClient(
  tool: 'mosquitto_sub' | 'mosquitto_pub',
  url: string,
  args: string[],
): Promise<{ out: string; code: number }> {
  const { hostname, port } = new URL(url);
  try {
    const { stdout, stderr } = await run(
      tool,
      ['-V', 'mqttv5', '-h', hostname, '-p', port, ...args],
      { timeout: 20_000 },
    );
    return { out: stdout + stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: unknown; message: string };
    if (e.code === 'ENOENT')
      assert.fail(`${tool} is not installed (apt-get install mosquitto-clients)`);
    return {
      out: `${e.stdout ?? ''}${e.stderr ?? ''}`,
      code: typeof e.code === 'number' ? e.code : -1,
    };
  }
}

describe('the node broker, MQTT 5 specifics', () => {
  const reader = { username: 'reader', password: 'north-only' };
  const ops = { username: 'ops', password: 'everything' };
  const annotations = `edgebridge/v1/${NS}/${north}/data/annotations`;

  it('advertises its maximum packet size, receive maximum and shared subscriptions, and cuts a longer session expiry to --broker-max-session-expiry', async () => {
    const { url } = await setup();
    const packet = await connack(url, {
      ...reader,
      clientId: `expiry-${process.pid}`,
      properties: { sessionExpiryInterval: 3600 },
    });
    assert.equal(packet.reasonCode, 0);
    assert.equal(packet.properties?.maximumPacketSize, MAX_PACKET);
    assert.equal(packet.properties?.receiveMaximum, 1024);
    // aedes says "not available"; the broker has shared subscriptions of its own.
    assert.equal(packet.properties?.sharedSubscriptionAvailable, true);
    assert.equal(packet.properties?.sessionExpiryInterval, MAX_EXPIRY);
  });

  it('keeps a session across reconnects for its expiry interval, with the messages queued meanwhile; ends it after', async () => {
    const { url } = await setup();
    const options = (id: string, expiry: number): IClientOptions => ({
      ...reader,
      protocolVersion: 5,
      clientId: `${id}-${process.pid}`,
      clean: false,
      properties: { sessionExpiryInterval: expiry },
    });
    const publisher = await client(url, { ...ops, protocolVersion: 5 });
    const kept = await client(url, options('kept', 30));
    const gone = await client(url, options('gone', 0));
    const brief = await client(url, options('brief', 1));
    for (const c of [kept, gone, brief]) {
      await c.subscribeAsync(annotations, { qos: 1 });
      await c.endAsync();
    }
    await publisher.publishAsync(annotations, 'while away', { qos: 1 });
    // Past the brief session's expiry (a second); the kept one has 30.
    await new Promise((r) => setTimeout(r, 2500));
    const resumed = async (id: string, expiry: number) => {
      const c = mqttConnect(url, { reconnectPeriod: 0, ...options(id, expiry) });
      clients.push(c);
      c.on('error', () => undefined);
      const seen = collect(c);
      const [packet] = [await new Promise<IConnackPacket>((r) => c.once('connect', r))];
      return { present: packet.sessionPresent, seen };
    };
    const again = await resumed('kept', 30);
    assert.equal(again.present, true);
    await until('the queued message', () => again.seen.length === 1);
    assert.deepEqual(again.seen, [`${annotations} while away`]);
    assert.equal((await resumed('gone', 0)).present, false);
    assert.equal((await resumed('brief', 1)).present, false);
  });

  it('passes user properties and content type through to an MQTT 5 subscriber', async () => {
    const { url } = await setup();
    const subscriber = await client(url, { ...reader, protocolVersion: 5 });
    const got = new Promise<Record<string, unknown> | undefined>((resolve) =>
      subscriber.on('message', (_topic, _payload, packet) =>
        resolve(packet.properties as Record<string, unknown> | undefined),
      ),
    );
    await subscriber.subscribeAsync(annotations, { qos: 1 });
    const publisher = await client(url, { ...ops, protocolVersion: 5 });
    await publisher.publishAsync(annotations, '{"who":"person"}', {
      qos: 1,
      properties: {
        userProperties: { camera: 'north', seq: '7' },
        contentType: 'application/json',
      },
    });
    const properties = await got;
    assert.deepEqual({ ...(properties?.userProperties as object) }, { camera: 'north', seq: '7' });
    assert.equal(properties?.contentType, 'application/json');
  });

  describe('shared subscriptions refused and allowed', () => {
    const jobs = `edgebridge/v1/${NS}/${north}/data/jobs`;
    let groups = 0;
    /** A group name of its own for each use, so that tests do not share members. */
    const group = (): string => `g${process.pid}-${(groups += 1)}`;
    /** Publishes `count` messages "<tag>-<i>" to the jobs topic with QoS 1. */
    const publishJobs = async (tag: string, count: number): Promise<string[]> => {
      const publisher = await client((await setup()).url, { ...ops, protocolVersion: 5 });
      const sent: string[] = [];
      for (let i = 0; i < count; i++) {
        sent.push(`${tag}-${i}`);
        await publisher.publishAsync(jobs, `${tag}-${i}`, { qos: 1 });
      }
      return sent;
    };
    /** Payloads of the messages a client gets on the jobs topic. */
    const jobsOf = (c: MqttClient): string[] => {
      const seen: string[] = [];
      c.on('message', (topic, payload) => {
        if (topic === jobs) seen.push(payload.toString());
      });
      return seen;
    };

    it('grants a shared filter within the grants (0x00 for QoS 0) and delivers each message to exactly one member, with its subscription identifier; a plain subscriber still gets all', async () => {
      const { url } = await setup();
      const g = group();
      const [a, b] = [
        await client(url, { ...reader, protocolVersion: 5 }),
        await client(url, { ...reader, protocolVersion: 5 }),
      ];
      const plain = await client(url, { ...reader, protocolVersion: 5 });
      const [seenA, seenB, seenPlain] = [jobsOf(a), jobsOf(b), jobsOf(plain)];
      const qos0 = await a.subscribeAsync(`$share/${g}/edgebridge/v1/${NS}/${north}/data`, {
        qos: 0,
      });
      assert.deepEqual(
        qos0.map((s) => s.qos),
        [0x00],
      );
      // The first member asks for its subscription identifier on each message.
      const ids = new Set<unknown>();
      a.on('message', (topic, _payload, packet) => {
        if (topic === jobs) ids.add(packet.properties?.subscriptionIdentifier);
      });
      const withId = await a.subscribeAsync(`$share/${g}/${jobs}`, {
        qos: 1,
        properties: { subscriptionIdentifier: 7 },
      });
      assert.deepEqual(
        withId.map((s) => s.qos),
        [1],
      );
      assert.deepEqual(await granted(b, [`$share/${g}/${jobs}`]), [1]);
      await plain.subscribeAsync(jobs, { qos: 1 });
      const sent = await publishJobs('each', 40);
      await until('every message at one member', () => seenA.length + seenB.length >= sent.length);
      await until('every message at the plain subscriber', () => seenPlain.length >= sent.length);
      assert.deepEqual([...seenA, ...seenB].sort(), [...sent].sort(), 'union = all, none twice');
      assert.deepEqual(
        seenA.filter((m) => seenB.includes(m)),
        [],
        'intersection = empty',
      );
      assert.ok(seenA.length > 0 && seenB.length > 0, 'both members got messages');
      assert.deepEqual(seenPlain, sent);
      assert.deepEqual([...ids], [7]);
    });

    it('refuses a shared filter outside the grants (0x87) and a malformed share name (0x8F), and delivers nothing for them', async () => {
      const { url } = await setup();
      const c = await client(url, { ...reader, protocolVersion: 5 });
      const seen = collect(c);
      assert.deepEqual(
        await granted(c, [
          `$share/${group()}/edgebridge/v1/${NS}/${south}/#`,
          `$share/${group()}/edgebridge/v1/${NS}/+/data`,
          `$share//edgebridge/v1/${NS}/${north}/data`,
          `$share/${group()}`,
        ]),
        [0x87, 0x87, 0x8f, 0x8f],
      );
      // mqtt.js will not send a share name with a wildcard: these go as raw packets.
      assert.deepEqual(
        await rawSuback(url, reader, [
          `$share/g+/edgebridge/v1/${NS}/${north}/data`,
          `$share/g#/edgebridge/v1/${NS}/${north}/data`,
          `$share/${group()}/edgebridge/v1/${NS}/${north}/data`,
        ]),
        [0x8f, 0x8f, 0x01],
      );
      await publishJobs('refused', 3);
      // The south device publishes as often as the north: a reader subscribed to the north sees samples meanwhile.
      const probe = await client(url, { ...reader, protocolVersion: 5 });
      const samples = collect(probe);
      await probe.subscribeAsync(`edgebridge/v1/${NS}/${north}/data`, { qos: 0 });
      await until('three north samples', () => samples.length >= 3);
      assert.deepEqual(seen, []);
      assert.ok(c.connected, 'the client was disconnected');
    });

    it('refuses $share/... to an MQTT 3.1.1 client (0x80), as a plain filter outside the topic scheme', async () => {
      const { url } = await setup();
      const c4 = await client(url, { ...reader, protocolVersion: 4 });
      assert.deepEqual(await granted(c4, [`$share/${group()}/${jobs}`]), [0x80]);
    });

    it('hands a leaving member’s unacknowledged QoS 1 messages, and later ones, to the other member', async () => {
      const { url } = await setup();
      const g = group();
      // This member never acknowledges what it gets.
      const heldByA: string[] = [];
      const a = await client(url, {
        ...reader,
        protocolVersion: 5,
        customHandleAcks: (topic, message) => {
          if (topic === jobs) heldByA.push(message.toString());
        },
      });
      // This one keeps its session: aedes sends it QoS 1 messages through its session store.
      const b = await client(url, {
        ...reader,
        protocolVersion: 5,
        clean: false,
        clientId: `shared-kept-${process.pid}`,
        properties: { sessionExpiryInterval: 30 },
      });
      const seenB = jobsOf(b);
      assert.deepEqual(await granted(a, [`$share/${g}/${jobs}`]), [1]);
      assert.deepEqual(await granted(b, [`$share/${g}/${jobs}`]), [1]);
      const first = await publishJobs('before', 10);
      // mqtt.js reads nothing more until it acknowledges: the first member holds one and has the rest unread.
      await until('a message held by the first member', () => heldByA.length > 0);
      await a.endAsync(true);
      await until('the held messages at the other member', () => seenB.length >= 10);
      const later = await publishJobs('after', 5);
      await until('the later messages', () => seenB.length >= 15);
      assert.deepEqual([...seenB].sort(), [...first, ...later].sort());

      // A member that unsubscribes leaves too: everything goes to the one left.
      const c = await client(url, { ...reader, protocolVersion: 5 });
      const seenC = jobsOf(c);
      assert.deepEqual(await granted(c, [`$share/${g}/${jobs}`]), [1]);
      const left = await b.unsubscribeAsync(`$share/${g}/${jobs}`);
      assert.deepEqual((left as { reasonCode?: number } | undefined)?.reasonCode ?? 0, 0);
      const last = await publishJobs('last', 5);
      await until('the last messages at the remaining member', () => seenC.length >= 5);
      assert.deepEqual(seenC, last);
      assert.equal(seenB.length, 15);
    });

    it('caps a client at 100 shared subscriptions (0x97 past it); resubscribing one is not a new one', async () => {
      const { url } = await setup();
      const c = await client(url, { ...reader, protocolVersion: 5 });
      const base = group();
      const filters = Array.from({ length: 100 }, (_, i) => `$share/${base}-${i}/${jobs}`);
      // In SUBSCRIBEs of 20: the agent's maxPacketBytes is 4096.
      for (let i = 0; i < filters.length; i += 20) {
        const some = filters.slice(i, i + 20);
        assert.deepEqual(
          await granted(c, some),
          some.map(() => 1),
        );
      }
      assert.deepEqual(await granted(c, [`$share/${base}-x/${jobs}`, filters[0] ?? '']), [0x97, 1]);
      await c.unsubscribeAsync(filters[1] ?? '');
      assert.deepEqual(await granted(c, [`$share/${base}-x/${jobs}`]), [1]);
      // Plain subscriptions are not counted.
      assert.deepEqual(await granted(c, [jobs]), [1]);
    });
  });

  it('serves mosquitto_sub and mosquitto_pub -V mqttv5 with the same access rules', async () => {
    const { url } = await setup();
    const auth = ['-u', 'reader', '-P', 'north-only'];
    const state = await mosquittoClient('mosquitto_sub', url, [
      ...auth,
      '-t',
      `edgebridge/v1/${NS}/${north}/state`,
      '-C',
      '1',
      '-v',
      '-W',
      '15',
    ]);
    assert.equal(state.code, 0, state.out);
    assert.equal(state.out.trim(), `edgebridge/v1/${NS}/${north}/state online`);
    const denied = await mosquittoClient('mosquitto_sub', url, [
      ...auth,
      '-t',
      `edgebridge/v1/${NS}/${south}/#`,
      '-W',
      '5',
    ]);
    assert.match(denied.out, /All subscription requests were denied/);
    const published = await mosquittoClient('mosquitto_pub', url, [
      ...auth,
      '-q',
      '1',
      '-t',
      annotations,
      '-m',
      'no publish grant',
    ]);
    assert.match(published.out, /not authori[sz]ed/i);
  });
});

describe('the node broker with ServiceAccount tokens (TokenReview against the API server)', () => {
  let started: Promise<Awaited<ReturnType<typeof make>>> | undefined;
  let controller: ControllerProcess | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installCrds(info);
    await installAgentRbac(info);
    await installControllerRbac(info);
    // Grants select Devices, which only the controller makes of the agent's slice.
    const ns = await testNamespace(info, 'broker-sa');
    controller = await startController(info, { namespace: ns.name });
    await createReadyNode(info, NODE, { 'edgebridge.io/test-group': NODE });
    const kubectl = async (...args: string[]) =>
      (await kubectlAsAdmin(info, ...args)).stdout.trim();
    await kubectl('create', 'serviceaccount', 'reader', '-n', ns.name);
    await kubectl('create', 'serviceaccount', 'other', '-n', ns.name);
    const token = (sa: string, audience = 'edgebridge') =>
      kubectl('create', 'token', sa, '-n', ns.name, '--audience', audience, '--duration', '1h');
    const dir = scratchDir('node-broker-sa');
    const brokerConfig = path.join(dir, 'broker.yaml');
    writeFileSync(
      brokerConfig,
      stringify({
        serviceAccounts: {
          audiences: ['edgebridge'],
          grants: [{ namespace: ns.name, name: 'reader', devices: [{ publish: false }] }],
        },
      }),
    );
    await edgeObjects(info, ns.name).createDiscovery('cams', {
      handler: {
        name: 'simulated',
        details: { devices: [{ id: 'cam-1' }], publishIntervalMs: 100 },
      },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': NODE } },
      intervalSeconds: 1,
    });
    const agent = await startAgent({
      node: NODE,
      registryArgs: ['--kubeconfig', info.kubeconfigs.agent],
      extraArgs: ['--broker-config', brokerConfig],
    });
    agents.push(agent);
    return {
      info,
      ns,
      agent,
      url: agent.brokerUrl ?? '',
      token,
      device: deviceName('cams', 'cam-1', true, NODE),
    };
  };
  const setup = lazy(() => (started = make()));
  after(async () => {
    await controller?.stop();
    const s = await settled(started);
    if (s === undefined) return;
    await kubeConfigFor(s.info, 'admin')
      .makeApiClient(CoreV1Api)
      .deleteNode({ name: NODE })
      .catch(() => undefined);
    await s.ns.remove();
  });

  for (const version of [4, 5] as const) {
    const name = version === 5 ? '5' : '3.1.1';
    it(`lets a pod’s token of a granted ServiceAccount subscribe to its devices, MQTT ${name}`, async () => {
      const { ns, url, token, device, agent } = await setup();
      const c = await client(url, {
        protocolVersion: version,
        username: 'serviceaccount',
        password: await token('reader'),
      });
      const seen = collect(c);
      assert.deepEqual(await granted(c, [`edgebridge/v1/${ns.name}/${device}/#`]), [1]);
      await until(
        'state and data',
        () =>
          seen.some((s) => s.includes('/data ')) && seen.some((s) => s.includes('/state online')),
      );
      assert.ok(
        (await agent.metric('edgebridge_registry_requests_total', {
          resource: 'tokenreviews',
          code: '2xx',
        })) >= 1,
      );
    });

    it(`refuses a token of a ServiceAccount without grants (5; 0x87) and a token for another audience (4; 0x86), MQTT ${name}`, async () => {
      const { url, token } = await setup();
      const [noGrants, bad] = version === 5 ? [0x87, 0x86] : [5, 4];
      assert.equal(
        await refusal(url, {
          protocolVersion: version,
          username: 'serviceaccount',
          password: await token('other'),
        }),
        noGrants,
      );
      assert.equal(
        await refusal(url, {
          protocolVersion: version,
          username: 'serviceaccount',
          password: await token('reader', 'not-edgebridge'),
        }),
        bad,
      );
      assert.equal(
        await refusal(url, {
          protocolVersion: version,
          username: 'serviceaccount',
          password: 'not.a.token',
        }),
        bad,
      );
    });
  }
});

describe('the agent with an external node broker (--broker-url, a real mosquitto)', () => {
  it('publishes device state (retained) and data there', async () => {
    const mosquitto = await startMosquitto({ name: 'node', persistence: false });
    brokers.push(mosquitto);
    const dir = scratchDir('external-broker');
    const config = path.join(dir, 'edgebridge.yaml');
    writeStandaloneConfig(config, {
      discoveries: [
        {
          namespace: 'lab',
          name: 'ext',
          spec: {
            handler: {
              name: 'simulated',
              details: { devices: [{ id: 'sensor-1' }], publishIntervalMs: 100 },
            },
            intervalSeconds: 1,
          },
        },
      ],
    });
    const agent = await startAgent({
      node: `ext-${process.pid}`,
      registryArgs: ['--standalone', '--config', config, '--state-dir', path.join(dir, 'state')],
      extraArgs: ['--broker-url', mosquitto.url],
    });
    agents.push(agent);
    assert.equal(agent.brokerUrl, undefined);
    const device = deviceName('ext', 'sensor-1', true, `ext-${process.pid}`);
    const c = await client(mosquitto.url);
    const seen = collect(c);
    await c.subscribeAsync(`edgebridge/v1/lab/${device}/#`, { qos: 1 });
    await until('state and data through mosquitto', () => seen.some((s) => s.includes('/data ')));
    // Retained if it came before the subscription, live otherwise.
    assert.ok(
      seen.some((s) => s.startsWith(`edgebridge/v1/lab/${device}/state online`)),
      seen.join('\n'),
    );
  });
});
