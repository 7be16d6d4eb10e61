// The data plane, side by side with a mosquitto bridge (persistence on) in the
// same run, on this machine, 256-byte messages:
//   (a) local publish -> subscriber throughput and p99 latency through the node
//       broker (a mosquitto node broker for both until the embedded one lands);
//   (b) edge-to-cloud throughput with the uplink up: ours (node broker -> uplink
//       process -> cloud) vs a mosquitto `connection` bridge node -> cloud;
//   (c) durable spool enqueue rate with group commit, and replay rate of a
//       backlog built while the cloud was down (ours: the uplink process with
//       its RSS sampled; mosquitto: its bridge queue), timing the drain;
//   (d) messages lost after SIGKILL of the bridge process with the cloud down.
// Sizes: MESSAGES (a, b; default 100000), BACKLOG (c; default 1000000),
// KILL_MESSAGES (d; default 20000). For a quick run:
//   MESSAGES=20000 BACKLOG=100000 KILL_MESSAGES=5000 npm run bench -- dataplane
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { openSpool, type SpoolInput } from '../src/spool/index.ts';
import { startMosquitto, type Mosquitto } from '../test/harness/mosquitto.ts';
import { UPLINK_NODE_ARGS } from '../test/harness/node-flags.ts';
import { startUplinkProcess, type UplinkProcess } from '../test/harness/uplink-process.ts';

const MESSAGES = Number(process.env.MESSAGES ?? 100_000);
const BACKLOG = Number(process.env.BACKLOG ?? 1_000_000);
const KILL_MESSAGES = Number(process.env.KILL_MESSAGES ?? 20_000);
const PAYLOAD_BYTES = 256;
const DEVICES = 8;
/** Publisher and subscriber windows (QoS 1 messages awaiting PUBACK). */
const WINDOW = 1000;
const CLUSTER_PREFIX = 'edgebridge/c1/node-1';
/** Both brokers take many QoS 1 in flight and queue without limit (the bridge queues its backlog there). */
const BROKER_CONFIG = ['max_inflight_messages 1000', 'max_queued_messages 0'];
const work = mkdtempSync(path.join(tmpdir(), 'edgebridge-bench-dataplane-'));
process.env.EDGEBRIDGE_TEST_RUN_DIR = work;

const cleanups: (() => Promise<void>)[] = [];
async function cleanup(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
}

function topic(n: number): string {
  return `edgebridge/v1/default/dev-${n % DEVICES}/data`;
}

/** 256 bytes: the message number and the send time, then padding. */
function payload(n: number): Buffer {
  const b = Buffer.alloc(PAYLOAD_BYTES, 0x5a);
  b.writeUInt32BE(n, 0);
  b.writeDoubleBE(performance.timeOrigin + performance.now(), 4);
  return b;
}

async function broker(name: string, extra: string[] = []): Promise<Mosquitto> {
  const b = await startMosquitto({ name, extraConfig: [...BROKER_CONFIG, ...extra] });
  cleanups.push(() => b.stop());
  return b;
}

/** Counts distinct message numbers arriving on `filter`, with each one's latency. */
async function counter(url: string, filter: string, expected: number) {
  const seen = new Uint8Array(expected);
  const latencies: number[] = [];
  let distinct = 0;
  let arrivals = 0;
  let last = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId: `bench-sub-${Math.random().toString(16).slice(2)}`,
    clean: false,
    properties: { sessionExpiryInterval: 3600, receiveMaximum: WINDOW },
    reconnectPeriod: 200,
  });
  client.on('error', () => undefined);
  client.on('message', (_t, p) => {
    arrivals += 1;
    const n = p.readUInt32BE(0);
    if (n < expected && seen[n] === 0) {
      seen[n] = 1;
      distinct += 1;
      last = performance.now();
      latencies.push(performance.timeOrigin + last - p.readDoubleBE(4));
      if (distinct === expected) done();
    }
  });
  await client.subscribeAsync(filter, { qos: 1 });
  cleanups.push(() => client.endAsync(true));
  return {
    all,
    get distinct() {
      return distinct;
    },
    get arrivals() {
      return arrivals;
    },
    get last() {
      return last;
    },
    p99(): number {
      const sorted = latencies.slice().sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length * 0.99)] ?? NaN;
    },
    missing(): number {
      return expected - distinct;
    },
  };
}

/** Publishes messages [from, to) with QoS 1, WINDOW in flight; resolves with how many were acknowledged. */
async function publish(client: MqttClient, from: number, to: number): Promise<number> {
  let acked = 0;
  let inFlight = 0;
  let wake: () => void = () => undefined;
  for (let n = from; n < to; n++) {
    while (inFlight >= WINDOW) await new Promise<void>((r) => (wake = r));
    inFlight += 1;
    client.publish(topic(n), payload(n), { qos: 1 }, (err) => {
      inFlight -= 1;
      if (!err) acked += 1;
      wake();
    });
  }
  while (inFlight > 0) await new Promise<void>((r) => (wake = r));
  return acked;
}

async function publisher(url: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  client.on('error', () => undefined);
  cleanups.push(() => client.endAsync(true));
  return client;
}

function bridgeConfig(cloud: Mosquitto): string[] {
  return [
    'connection cloud',
    `address 127.0.0.1:${cloud.port}`,
    'bridge_protocol_version mqttv50',
    'cleansession false',
    'bridge_attempt_unsubscribe false',
    'restart_timeout 1 1',
    'keepalive_interval 30',
    `topic edgebridge/v1/# out 1 "" ${CLUSTER_PREFIX}/`,
    'autosave_interval 1800',
  ];
}

function uplinkConfig(
  node: Mosquitto,
  cloud: Mosquitto,
  spoolDir: string,
): Record<string, unknown> {
  return {
    cluster: 'c1',
    discoveries: false,
    topics: [{ filter: 'edgebridge/v1/+/+/data/#' }],
    cloud: { url: cloud.url },
    nodeBroker: { url: node.url },
    spool: { dir: spoolDir, maxBytes: '2Gi', onFull: 'block' },
  };
}

async function uplinkProcess(
  config: Record<string, unknown>,
  name: string,
): Promise<UplinkProcess> {
  const p = await startUplinkProcess({
    config,
    // As the image runs it with the uplink patch.
    nodeArgs: UPLINK_NODE_ARGS,
    stateDir: work,
    logFile: path.join(work, `${name}.log`),
  });
  cleanups.push(() => p.kill());
  return p;
}

interface Row {
  what: string;
  ours: string;
  mosquitto: string;
  target: string;
  met: string;
}
const rows: Row[] = [];
const rate = (n: number, ms: number): string =>
  `${Math.round((n * 1000) / ms).toLocaleString('en')}/s`;

async function localThroughput(): Promise<void> {
  const node = await broker('a-node');
  const sub = await counter(node.url, 'edgebridge/v1/#', MESSAGES);
  const pub = await publisher(node.url);
  const start = performance.now();
  await publish(pub, 0, MESSAGES);
  await sub.all;
  const ms = sub.last - start;
  const text = `${rate(MESSAGES, ms)}, p99 ${sub.p99().toFixed(1)} ms`;
  rows.push({
    what: '(a) local pub->sub via node broker',
    ours: `${text} (mosquitto node broker)`,
    mosquitto: text,
    target: '-',
    met: '-',
  });
  await cleanup();
}

async function edgeToCloud(): Promise<{ ours: number; theirs: number }> {
  // Ours: node mosquitto -> uplink process (spool) -> cloud mosquitto.
  const cloud = await broker('b-cloud');
  const node = await broker('b-node');
  const sub = await counter(cloud.url, `${CLUSTER_PREFIX}/#`, MESSAGES);
  await uplinkProcess(uplinkConfig(node, cloud, path.join(work, 'b-spool')), 'b-uplink');
  const pub = await publisher(node.url);
  let start = performance.now();
  await publish(pub, 0, MESSAGES);
  await sub.all;
  const ours = (MESSAGES * 1000) / (sub.last - start);
  await cleanup();
  // Mosquitto: a node mosquitto with a bridge to the cloud mosquitto.
  const cloud2 = await broker('b-cloud-m');
  const bridge = await broker('b-bridge', bridgeConfig(cloud2));
  const sub2 = await counter(cloud2.url, `${CLUSTER_PREFIX}/#`, MESSAGES);
  await sleep(1500); // the bridge connects
  const pub2 = await publisher(bridge.url);
  start = performance.now();
  await publish(pub2, 0, MESSAGES);
  await sub2.all;
  const theirs = (MESSAGES * 1000) / (sub2.last - start);
  await cleanup();
  rows.push({
    what: '(b) edge-to-cloud, uplink up',
    ours: `${Math.round(ours).toLocaleString('en')}/s`,
    mosquitto: `${Math.round(theirs).toLocaleString('en')}/s`,
    target: '>= 80% of mosquitto',
    met:
      ours >= 0.8 * theirs
        ? `yes (${Math.round((100 * ours) / theirs)}%)`
        : `NO (${Math.round((100 * ours) / theirs)}%)`,
  });
  return { ours, theirs };
}

async function enqueueRate(): Promise<void> {
  const dir = path.join(work, 'c-enqueue');
  const spool = await openSpool({
    dir,
    maxBytes: 2 * 1024 ** 3,
    onFull: 'block',
    sync: 'group',
    intervalMs: 10,
    maxMessages: 1000,
  });
  const count = Math.min(BACKLOG, 500_000);
  const body = Buffer.alloc(PAYLOAD_BYTES, 0x5a);
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let n = 0; n < count; n += 100) {
    const batch: SpoolInput[] = [];
    for (let i = n; i < n + 100; i++)
      batch.push({
        key: `dev-${i % DEVICES}`,
        topic: topic(i),
        payload: body,
        timestamp: Date.now(),
      });
    pending.push(spool.append(batch));
    if (pending.length >= 20) await pending.shift();
  }
  await Promise.all(pending);
  const ms = performance.now() - start;
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
  const r = (count * 1000) / ms;
  rows.push({
    what: `(c) durable enqueue, group commit (${count.toLocaleString('en')})`,
    ours: `${Math.round(r).toLocaleString('en')}/s`,
    mosquitto: 'n/a (no durable ack)',
    target: '>= 100,000/s',
    met: r >= 100_000 ? 'yes' : 'NO',
  });
}

async function replay(): Promise<void> {
  // Ours: the spool holds BACKLOG messages made while the cloud was down; the
  // uplink process starts with the cloud up and drains it.
  const spoolDir = path.join(work, 'c-spool');
  const spool = await openSpool({
    dir: spoolDir,
    maxBytes: 2 * 1024 ** 3,
    onFull: 'block',
    sync: 'group',
    intervalMs: 10,
    maxMessages: 5000,
  });
  const pending: Promise<void>[] = [];
  for (let n = 0; n < BACKLOG; n += 1000) {
    const batch: SpoolInput[] = [];
    for (let i = n; i < Math.min(BACKLOG, n + 1000); i++)
      batch.push({
        key: `dev-${i % DEVICES}`,
        topic: topic(i),
        payload: payload(i),
        timestamp: Date.now(),
      });
    pending.push(spool.append(batch));
    if (pending.length >= 10) await pending.shift();
  }
  await Promise.all(pending);
  await spool.close();
  const cloud = await broker('c-cloud');
  const node = await broker('c-node');
  const sub = await counter(cloud.url, `${CLUSTER_PREFIX}/#`, BACKLOG);
  let start = performance.now();
  const up = await uplinkProcess(uplinkConfig(node, cloud, spoolDir), 'c-uplink');
  let peakRss = 0;
  const sampling = (async () => {
    while (sub.distinct < BACKLOG) {
      peakRss = Math.max(peakRss, (await up.stats()).rss);
      await sleep(250);
    }
  })();
  await sub.all;
  await sampling;
  const ours = (BACKLOG * 1000) / (sub.last - start);
  await cleanup();
  // Mosquitto: the bridge queues BACKLOG messages while the cloud is down, then drains.
  const cloud2 = await broker('c-cloud-m');
  const sub2 = await counter(cloud2.url, `${CLUSTER_PREFIX}/#`, BACKLOG);
  await cloud2.stop();
  const bridge = await broker('c-bridge', bridgeConfig(cloud2));
  const pub = await publisher(bridge.url);
  await publish(pub, 0, BACKLOG);
  start = performance.now();
  await cloud2.start();
  await sub2.all;
  const theirs = (BACKLOG * 1000) / (sub2.last - start);
  await cleanup();
  rows.push({
    what: `(c) replay after outage (${BACKLOG.toLocaleString('en')})`,
    ours: `${Math.round(ours).toLocaleString('en')}/s`,
    mosquitto: `${Math.round(theirs).toLocaleString('en')}/s`,
    target: '>= 80% of mosquitto',
    met:
      ours >= 0.8 * theirs
        ? `yes (${Math.round((100 * ours) / theirs)}%)`
        : `NO (${Math.round((100 * ours) / theirs)}%)`,
  });
  rows.push({
    what: '    RSS of our process during replay',
    ours: `${Math.round(peakRss / 1024 / 1024)} MB peak`,
    mosquitto: '-',
    target: '< 150 MB',
    met: peakRss < 150 * 1024 * 1024 ? 'yes' : 'NO',
  });
}

async function lostAfterKill(): Promise<void> {
  // Ours: the cloud is down; the node broker hands messages to the uplink
  // process, which acknowledges each once durable; SIGKILL it, start it again,
  // bring the cloud up, count what never arrives of what the producer had acknowledged.
  const cloud = await broker('d-cloud');
  const sub = await counter(cloud.url, `${CLUSTER_PREFIX}/#`, KILL_MESSAGES);
  await cloud.stop();
  const node = await broker('d-node');
  const config = uplinkConfig(node, cloud, path.join(work, 'd-spool'));
  const up = await uplinkProcess(config, 'd-uplink');
  const pub = await publisher(node.url);
  const acked = await publish(pub, 0, KILL_MESSAGES);
  await sleep(200);
  await up.kill();
  await uplinkProcess(config, 'd-uplink');
  await cloud.start();
  await Promise.race([sub.all, sleep(60_000)]);
  const ours = acked - sub.distinct;
  await cleanup();
  // Mosquitto: the bridge (node mosquitto) has acknowledged everything and
  // queued it for the cloud; SIGKILL it, start it again, bring the cloud up.
  const cloud2 = await broker('d-cloud-m');
  const sub2 = await counter(cloud2.url, `${CLUSTER_PREFIX}/#`, KILL_MESSAGES);
  await cloud2.stop();
  const bridge = await broker('d-bridge', bridgeConfig(cloud2));
  const pub2 = await publisher(bridge.url);
  const acked2 = await publish(pub2, 0, KILL_MESSAGES);
  await bridge.kill();
  await bridge.start();
  await cloud2.start();
  await Promise.race([sub2.all, sleep(15_000)]);
  const theirs = acked2 - sub2.distinct;
  await cleanup();
  rows.push({
    what: `(d) lost after SIGKILL of the bridge (${KILL_MESSAGES.toLocaleString('en')} acked)`,
    ours: String(ours),
    mosquitto: String(theirs),
    target: 'ours = 0',
    met: ours === 0 ? 'yes' : 'NO',
  });
}

try {
  console.log(
    `data plane benchmark: MESSAGES=${MESSAGES} BACKLOG=${BACKLOG} KILL_MESSAGES=${KILL_MESSAGES}, ${PAYLOAD_BYTES}-byte payloads; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (shared machine: figures are noisy)`,
  );
  await localThroughput();
  await edgeToCloud();
  await enqueueRate();
  await replay();
  await lostAfterKill();
} finally {
  await cleanup();
  rmSync(work, { recursive: true, force: true });
}
const widths = (['what', 'ours', 'mosquitto', 'target', 'met'] as const).map((k) =>
  Math.max(k.length, ...rows.map((r) => r[k].length)),
);
const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ');
console.log(line(['what', 'ours', 'mosquitto bridge', 'target', 'met']));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const r of rows) console.log(line([r.what, r.ours, r.mosquitto, r.target, r.met]));
console.log(
  `load average after: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
