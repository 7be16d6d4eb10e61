// The embedded node broker in this process, with real MQTT clients over
// loopback: the beforeAck hook, the packet-size guard, and the device publisher.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as connectRaw } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { pino } from 'pino';
import { deviceName } from '../../src/api/names.ts';
import { AccessControl } from '../../src/dataplane/access.ts';
import { BrokerDevicePublisher } from '../../src/dataplane/device-publisher.ts';
import { EmbeddedBroker, type BeforeAckMessage } from '../../src/dataplane/embedded-broker.ts';
import { BrokerConfigError } from '../../src/dataplane/errors.ts';
import { INTERNAL_CLIENT_ID, type BrokerMessage } from '../../src/dataplane/node-broker.ts';
import { AgentMetrics } from '../../src/metrics.ts';
import { eventually } from '../harness/devices.ts';

const lines: string[] = [];
const log = pino({ level: 'debug' }, { write: (l: string) => lines.push(l) });
const logged = (msg: string): Record<string, unknown>[] =>
  lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

const NS = 'lab';
const CAM = 'cam-1';
const TOPIC = `edgebridge/v1/${NS}/${CAM}/data`;

/** beforeAck calls; `gate` decides when (and whether) each one resolves. */
const seen: BeforeAckMessage[] = [];
let gate: (m: BeforeAckMessage) => Promise<void> = () => Promise.resolve();
const metrics = new AgentMetrics({ processMetrics: false });
const clients: MqttClient[] = [];
const until = (what: string, condition: () => boolean): Promise<true> =>
  eventually(what, () => Promise.resolve(condition() ? true : undefined));

const broker = await EmbeddedBroker.start({
  host: '127.0.0.1',
  port: 0,
  maxPacketBytes: 4096,
  authenticate: (username) =>
    Promise.resolve(
      username === 'writer'
        ? {
            ok: true,
            principal: { name: 'user:writer', grants: [{ namespace: NS, publish: true }] },
          }
        : { ok: false, returnCode: 5, reason: 'test: only writer' },
    ),
  access: new AccessControl(() => Promise.resolve({})),
  beforeAck: async (messages) => {
    seen.push(...messages);
    await Promise.all(messages.map((m) => gate(m)));
  },
  log,
  metrics,
});

async function client(protocolVersion: 4 | 5 = 4): Promise<MqttClient> {
  const c = await connectAsync(broker.url, {
    username: 'writer',
    password: 'x',
    reconnectPeriod: 0,
    protocolVersion,
  });
  clients.push(c);
  c.on('error', () => undefined);
  return c;
}

after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await broker.close();
});

describe('the embedded node broker', () => {
  it('acknowledges a QoS 1 publish only after beforeAck resolves, and hands it over in order', async () => {
    seen.length = 0;
    const received: BrokerMessage[] = [];
    const unsubscribe = await broker.subscribe(`edgebridge/v1/${NS}/#`, (m) => received.push(m));
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    gate = (m) => (m.payload.toString() === 'first' ? held : Promise.resolve());
    const c = await client();
    let acked = false;
    const first = c.publishAsync(TOPIC, 'first', { qos: 1 }).then(() => (acked = true));
    const second = c.publishAsync(TOPIC, 'second', { qos: 1 });
    await until('both messages at beforeAck', () => seen.length === 2);
    assert.deepEqual(
      seen.map((m) => [m.topic, m.payload.toString(), m.clientId, m.qos, m.retain]),
      [
        [TOPIC, 'first', c.options.clientId, 1, false],
        [TOPIC, 'second', c.options.clientId, 1, false],
      ],
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(acked, false, 'PUBACK before beforeAck resolved');
    assert.equal(received.length, 0, 'delivered before beforeAck resolved');
    release();
    await Promise.all([first, second]);
    await until('delivery', () => received.length === 2);
    assert.deepEqual(
      received.map((m) => m.payload.toString()),
      ['first', 'second'],
    );
    await unsubscribe();
  });

  it('neither acknowledges nor delivers when beforeAck rejects, closes the client, and carries on', async () => {
    const received: string[] = [];
    const unsubscribe = await broker.subscribe(TOPIC, (m) => received.push(m.payload.toString()));
    gate = (m) =>
      m.payload.toString() === 'doomed'
        ? Promise.reject(new Error('spool full'))
        : Promise.resolve();
    const c = await client();
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    let acked = false;
    void c.publishAsync(TOPIC, 'doomed', { qos: 1 }).then(
      () => (acked = true),
      () => undefined,
    );
    await closed;
    assert.equal(acked, false);
    assert.equal(
      logged(
        'message not acknowledged (beforeAck failed); closing the client connection so that it resends',
      ).length,
      1,
    );
    gate = () => Promise.resolve();
    const other = await client();
    await other.publishAsync(TOPIC, 'fine', { qos: 1 });
    await until('the next message', () => received.includes('fine'));
    assert.deepEqual(received, ['fine']);
    await unsubscribe();
  });

  it('answers an MQTT 5 publish refused for a full spool with PUBACK 0x97 and keeps the connection; a 3.1.1 client is closed', async () => {
    const received: string[] = [];
    const unsubscribe = await broker.subscribe(TOPIC, (m) => received.push(m.payload.toString()));
    const full = Object.assign(new Error('spool disk full'), {
      spoolCode: 'EDGEBRIDGE_SPOOL_DISK_FULL',
    });
    gate = (m) =>
      m.payload.toString().startsWith('full') ? Promise.reject(full) : Promise.resolve();
    const v5 = await client(5);
    await assert.rejects(
      v5.publishAsync(TOPIC, 'full-5', { qos: 1 }),
      (err: { code?: unknown }) => {
        assert.equal(err.code, 0x97);
        return true;
      },
    );
    assert.ok(v5.connected, 'the MQTT 5 client was disconnected');
    await v5.publishAsync(TOPIC, 'after-5', { qos: 1 });
    const v4 = await client(4);
    const closed = new Promise<void>((r) => v4.once('close', () => r()));
    v4.publish(TOPIC, 'full-4', { qos: 1 });
    await closed;
    gate = () => Promise.resolve();
    await until('the message after the refusal', () => received.includes('after-5'));
    assert.deepEqual(received, ['after-5']);
    assert.equal(
      logged('message not acknowledged (spool full): MQTT 5 PUBACK 0x97 (quota exceeded)').length,
      1,
    );
    await unsubscribe();
  });

  it('passes the agent’s own messages through beforeAck, as the internal client', async () => {
    seen.length = 0;
    await broker.publish(`edgebridge/v1/${NS}/${CAM}/state`, 'online', { qos: 1, retain: true });
    assert.deepEqual(
      seen.map((m) => [m.clientId, m.retain, m.payload.toString()]),
      [[INTERNAL_CLIENT_ID, true, 'online']],
    );
  });

  it('keeps the agent’s messages for one device in order, and does not hold another device’s behind them', async () => {
    const got: string[] = [];
    const stop = await broker.subscribe(`edgebridge/v1/${NS}/+/#`, (m) =>
      got.push(`${m.topic.split('/')[3] ?? ''} ${m.payload.toString()}`),
    );
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    gate = (m) => (m.payload.toString() === 'held' ? held : Promise.resolve());
    try {
      const first = broker.publish(`edgebridge/v1/${NS}/${CAM}/state`, 'held', {
        qos: 1,
        retain: true,
      });
      const second = broker.publish(TOPIC, 'after', { qos: 1 });
      // Another device's message passes while cam-1's first is held...
      const other = broker.publish(`edgebridge/v1/${NS}/cam-2/data`, 'other', { qos: 1 });
      await until('cam-2’s message', () => got.includes('cam-2 other'));
      await other;
      assert.deepEqual(got, ['cam-2 other']);
      // ...and cam-1's second waits for its first.
      release();
      await Promise.all([first, second]);
      await until('cam-1’s messages', () => got.length === 3);
      assert.deepEqual(got, ['cam-2 other', 'cam-1 held', 'cam-1 after']);
    } finally {
      release();
      gate = () => Promise.resolve();
      await stop();
    }
  });

  it('closes a connection that announces a packet over the limit, before reading it, and carries on', async () => {
    const socket = connectRaw(broker.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.on('error', () => undefined);
    const closed = new Promise((r) => socket.once('close', r));
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        clientId: 'big',
        username: 'writer',
        password: Buffer.from('x'),
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        keepalive: 30,
      }),
    );
    // Only the fixed header of a 1 MB publish: the rest never needs to arrive.
    const big = mqttPacket.generate({
      cmd: 'publish',
      topic: TOPIC,
      payload: Buffer.alloc(1 << 20),
      qos: 0,
      retain: false,
      dup: false,
    });
    socket.write(big.subarray(0, 8));
    await closed;
    assert.ok(
      logged('client connection closed').some((l) =>
        String(l.err).includes('larger than the limit'),
      ),
    );
    assert.equal(await metricValue('edgebridge_broker_client_errors_total', 'too_large'), 1);
    const c = await client();
    await c.publishAsync(TOPIC, 'still serving', { qos: 1 });
  });

  it('refuses a client id that impersonates the agent', async () => {
    await assert.rejects(
      connectAsync(broker.url, {
        clientId: '$edgebridge/agent',
        username: 'writer',
        password: 'x',
        reconnectPeriod: 0,
      }),
      /Identifier rejected/i,
    );
  });

  it('names a port another process holds as a configuration error; the holder serves on', async () => {
    await assert.rejects(
      EmbeddedBroker.start({
        host: '127.0.0.1',
        port: broker.port,
        maxPacketBytes: 4096,
        authenticate: () => Promise.resolve({ ok: false, returnCode: 5, reason: 'test' }),
        access: new AccessControl(() => Promise.resolve({})),
        log,
      }),
      (err: unknown) =>
        err instanceof BrokerConfigError &&
        err.code === 'EDGEBRIDGE_BROKER_CONFIG' &&
        err.message.includes(`127.0.0.1:${broker.port} is in use`),
    );
    // The first broker still serves.
    const c = await client();
    await c.publishAsync(TOPIC, 'after the failed start', { qos: 1 });
  });
});

describe('the device publisher', () => {
  const publisherLog = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
  const make = () =>
    new BrokerDevicePublisher({
      broker,
      namespace: NS,
      discovery: 'sims',
      shared: true,
      node: 'n1',
      maxPayloadBytes: 100,
      log: publisherLog,
      metrics,
    });
  const name = (id: string): string => deviceName('sims', id, true, 'n1');

  it('publishes on the Device’s topics, with its state retained: online while listed, offline when not', async () => {
    const received: string[] = [];
    const unsubscribe = await broker.subscribe(`edgebridge/v1/${NS}/#`, (m) =>
      received.push(`${m.topic} ${m.payload.toString()}`),
    );
    const publisher = make();
    publisher.observe([
      { id: 'a', properties: {} },
      { id: 'b', properties: {} },
    ]);
    publisher.data('a', 'reading', 'temp');
    publisher.event('b', { kind: 'button' });
    publisher.observe([{ id: 'b', properties: {} }]);
    await publisher.close();
    await until('messages', () => received.length >= 6);
    assert.deepEqual(
      received,
      [
        `edgebridge/v1/${NS}/${name('a')}/state online`,
        `edgebridge/v1/${NS}/${name('b')}/state online`,
        `edgebridge/v1/${NS}/${name('a')}/data/temp reading`,
        `edgebridge/v1/${NS}/${name('b')}/events {"kind":"button"}`,
        `edgebridge/v1/${NS}/${name('a')}/state offline`,
        `edgebridge/v1/${NS}/${name('b')}/state offline`,
      ].concat(received.slice(6)),
    );
    await unsubscribe();
  });

  it('drops bad input, counts it, logs each problem once, and never throws', async () => {
    const received: string[] = [];
    const unsubscribe = await broker.subscribe(`edgebridge/v1/${NS}/#`, (m) =>
      received.push(m.topic),
    );
    const publisher = make();
    const before = lines.length;
    publisher.data('a', Buffer.alloc(101));
    publisher.data('a', Buffer.alloc(101));
    publisher.data('a', 'x', 'bad/stream');
    publisher.data(42 as unknown as string, 'x');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    publisher.event('a', cyclic);
    publisher.state('a', 'asleep' as 'online');
    publisher.data('a', 'ok');
    await publisher.close();
    await until('the good message', () => received.length > 0);
    assert.deepEqual(received, [`edgebridge/v1/${NS}/${name('a')}/data`]);
    const problems = lines.slice(before).map((l) => (JSON.parse(l) as { problem: string }).problem);
    assert.equal(problems.length, 5, problems.join('; '));
    assert.equal(await metricValue('edgebridge_device_messages_rejected_total', 'data'), 4);
    await unsubscribe();
  });
});

async function metricValue(name: string, label: string): Promise<number> {
  const text = await metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(`"${label}"`));
  return Number(line?.split(' ').pop() ?? 0);
}
