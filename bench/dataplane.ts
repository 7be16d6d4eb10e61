// The data plane, side by side with a mosquitto bridge (persistence on) in the
// same run, on this machine, 256-byte messages. "Ours" is the real agent as the
// image runs it with the uplink patch (built JavaScript, UPLINK_NODE_ARGS),
// standalone, with its embedded broker and an uplink:
//   (a) local publish -> subscriber throughput and p99 latency through the node
//       broker (the agent's embedded broker, no uplink; a plain mosquitto);
//   (b) edge-to-cloud throughput with the uplink up: producer -> agent (broker,
//       spool, sender) -> cloud mosquitto vs producer -> mosquitto bridge -> cloud;
//   (c) durable spool enqueue rate with group commit, and replay rate of a
//       backlog built while the cloud was down (ours: the agent starting on a
//       full spool, its RSS sampled; mosquitto: its bridge queue);
//   (d) messages lost after SIGKILL of the agent / the bridge with the cloud down.
// Sizes: MESSAGES (a, b; default 100000), BACKLOG (c; default 1000000),
// KILL_MESSAGES (d; default 20000); PARTS picks parts (e.g. PARTS=ab);
// PROTOCOL (4 or 5; default 4) is the MQTT version producers and subscribers
// speak to the node broker in (a) and (b), ours and mosquitto alike. The
// machine's speed drifts (mosquitto's own figure moved by 30% between runs
// here), so (b) and the replay run ROUNDS times (default 3), ours and
// mosquitto in turn, and the table gives the medians. Quick run:
//   ROUNDS=1 MESSAGES=20000 BACKLOG=100000 KILL_MESSAGES=5000 npm run bench -- dataplane
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { deviceName } from '../src/api/names.ts';
import { openSpool, type SpoolInput } from '../src/spool/index.ts';
import { startAgent, type AgentProcess } from '../test/harness/agent.ts';
import { startMosquitto, type Mosquitto } from '../test/harness/mosquitto.ts';
import { UPLINK_NODE_ARGS } from '../test/harness/node-flags.ts';
import { freePort } from '../test/harness/ports.ts';
import { writeStandaloneConfig } from '../test/harness/standalone-config.ts';

const MESSAGES = Number(process.env.MESSAGES ?? 100_000);
const BACKLOG = Number(process.env.BACKLOG ?? 1_000_000);
const KILL_MESSAGES = Number(process.env.KILL_MESSAGES ?? 20_000);
/** (b) and the replay run this many times, ours and mosquitto in turn; the table gives medians. */
const ROUNDS = Number(process.env.ROUNDS ?? 3);
/** The MQTT version spoken to the node broker in (a) and (b). */
const PROTOCOL: 4 | 5 = process.env.PROTOCOL === '5' ? 5 : 4;
const PAYLOAD_BYTES = 256;
const DEVICES = 8;
/** Publisher and subscriber windows (QoS 1 messages awaiting PUBACK). */
const WINDOW = 1000;
const NODE = 'node-1';
const NS = 'default';
const CLUSTER_PREFIX = `edgebridge/c1/${NODE}`;
/** The bench's devices: a simulated Discovery lists them, so that the agent's broker knows them. */
const DEVICE_IDS = Array.from({ length: DEVICES }, (_, i) => `dev-${i}`);
const DEVICE_NAMES = DEVICE_IDS.map((id) => deviceName('bench', id, true, NODE));
/** The agent's broker user (loopback only). */
const USER = 'bench';
const PASSWORD = 'bench-password';
const ROOT = path.resolve(import.meta.dirname, '..');
const BUILT = path.join(ROOT, 'dist/src/cli/main.js');
/** Both brokers take many QoS 1 in flight and queue without limit (the bridge queues its backlog there). */
const BROKER_CONFIG = ['max_inflight_messages 1000', 'max_queued_messages 0'];
const work = mkdtempSync(path.join(tmpdir(), 'edgebridge-bench-dataplane-'));
process.env.EDGEBRIDGE_TEST_RUN_DIR = work;

const cleanups: (() => Promise<void>)[] = [];
async function cleanup(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
}

function topic(n: number): string {
  return `edgebridge/v1/${NS}/${DEVICE_NAMES[n % DEVICES] ?? ''}/data`;
}

/** The spool's key for a message on topic(n), as the agent's uplink makes it. */
function key(n: number): string {
  return `${NS}/${DEVICE_NAMES[n % DEVICES] ?? ''}`;
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
async function counter(url: string, filter: string, expected: number, protocolVersion: 4 | 5 = 5) {
  const seen = new Uint8Array(expected);
  const latencies: number[] = [];
  let distinct = 0;
  let arrivals = 0;
  let last = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  const client = await mqtt.connectAsync(url, {
    protocolVersion,
    clientId: `bench-sub-${Math.random().toString(16).slice(2)}`,
    clean: false,
    // MQTT 3.1.1 (the embedded broker) has no session expiry or receive maximum.
    ...(protocolVersion === 5
      ? { properties: { sessionExpiryInterval: 3600, receiveMaximum: WINDOW } }
      : {}),
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

async function publisher(url: string, protocolVersion: 4 | 5 = 5): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion, reconnectPeriod: 0 });
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

interface Ours {
  agent: AgentProcess;
  /** The agent's broker, with the bench user's credentials. */
  url: string;
}

/**
 * Starts the real agent named `name` (its files under the run directory, so a
 * restart finds its state and spool), with an uplink to `cloudUrl` unless it
 * is undefined; resolves once its broker knows the bench's devices.
 */
async function ours(
  name: string,
  cloudUrl: string | undefined,
  opts: { port?: number; sidecarUrl?: string } = {},
): Promise<Ours> {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'edgebridge.yaml');
  writeStandaloneConfig(config, {
    discoveries: [
      {
        namespace: NS,
        name: 'bench',
        spec: {
          handler: { name: 'simulated', details: { devices: DEVICE_IDS.map((id) => ({ id })) } },
        },
      },
    ],
    secrets: [{ namespace: NS, name: 'broker-users', stringData: { [USER]: PASSWORD } }],
  });
  const brokerConfig = path.join(dir, 'broker.yaml');
  writeFileSync(
    brokerConfig,
    stringify({
      users: [
        {
          name: USER,
          passwordFrom: { secretKeyRef: { namespace: NS, name: 'broker-users', key: USER } },
          devices: [{ namespace: NS, publish: true }],
        },
      ],
    }),
  );
  const uplinkArgs: string[] = [];
  if (cloudUrl !== undefined) {
    const uplinkConfig = path.join(dir, 'uplink.yaml');
    writeFileSync(
      uplinkConfig,
      stringify({
        cluster: 'c1',
        cloud: { url: cloudUrl },
        discoveries: false,
        topics: [{ filter: 'edgebridge/v1/+/+/data/#' }],
        spool: {
          dir: spoolDirOf(name),
          maxBytes: '2Gi',
          onFull: 'block',
          sync: 'group',
          // GROUP_MS sets the group-commit interval (the agent's default otherwise).
          ...(process.env.GROUP_MS !== undefined
            ? { groupIntervalMs: Number(process.env.GROUP_MS) }
            : {}),
        },
        ...(opts.sidecarUrl !== undefined ? { nodeBroker: { url: opts.sidecarUrl } } : {}),
      }),
    );
    uplinkArgs.push('--uplink-config', uplinkConfig);
  }
  const brokerPort = opts.port ?? (await freePort());
  const brokerArgs =
    opts.sidecarUrl !== undefined
      ? ['--broker-url', opts.sidecarUrl]
      : [
          '--broker-host',
          '127.0.0.1',
          '--broker-port',
          String(brokerPort),
          '--broker-config',
          brokerConfig,
        ];
  const agent = await startAgent({
    node: NODE,
    cli: BUILT,
    // BENCH_AGENT_NODE_ARGS adds node flags, e.g. "--cpu-prof --cpu-prof-dir=DIR" to profile.
    nodeArgs: [
      ...UPLINK_NODE_ARGS,
      ...(process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
    ],
    registryArgs: ['--standalone', '--config', config, '--state-dir', path.join(dir, 'state')],
    extraArgs: [
      ...brokerArgs,
      ...uplinkArgs,
      // The harness finds the agent's ports in its info lines; nothing is logged per message.
      '--log-level',
      'info',
    ],
  });
  cleanups.push(() => agent.stop());
  const t = performance.now();
  while ((await agent.metric('edgebridge_devices', { discovery: 'bench' })) < DEVICES) {
    if (performance.now() - t > 30_000)
      throw new Error(`${name}: the bench devices were not registered`);
    await sleep(100);
  }
  return {
    agent,
    url: opts.sidecarUrl ?? `mqtt://${USER}:${PASSWORD}@127.0.0.1:${brokerPort}`,
  };
}

function spoolDirOf(name: string): string {
  return path.join(work, name, 'spool');
}

/** VmRSS of a process, in bytes. */
function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? NaN) * 1024;
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
const perSecond = (r: number): string => `${Math.round(r).toLocaleString('en')}/s`;
/** Every round's figures, printed under the table. */
const rounds: string[] = [];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** One pass of publisher -> broker -> subscriber: "rate, p99". */
async function pubSub(url: string, protocolVersion: 4 | 5): Promise<string> {
  const sub = await counter(url, `edgebridge/v1/${NS}/+/data`, MESSAGES, protocolVersion);
  const pub = await publisher(url, protocolVersion);
  const start = performance.now();
  await publish(pub, 0, MESSAGES);
  await sub.all;
  return `${rate(MESSAGES, sub.last - start)}, p99 ${sub.p99().toFixed(1)} ms`;
}

function share(ours: number, theirs: number): string {
  const pct = Math.round((100 * ours) / theirs);
  return ours >= 0.8 * theirs ? `yes (${pct}%)` : `NO (${pct}%)`;
}

async function localThroughput(): Promise<void> {
  const agent = await ours('a-agent', undefined);
  const oursText = await pubSub(agent.url, PROTOCOL);
  await cleanup();
  const node = await broker('a-node');
  const theirsText = await pubSub(node.url, PROTOCOL);
  await cleanup();
  rows.push({
    what: `(a) local pub->sub via node broker, MQTT ${PROTOCOL === 5 ? '5' : '3.1.1'}`,
    ours: oursText,
    mosquitto: theirsText,
    target: '-',
    met: '-',
  });
}

/** Ours: producer -> agent (embedded broker, PUBACK once in the spool; sender) -> cloud mosquitto. */
async function edgeToCloudOurs(): Promise<number> {
  const cloud = await broker('b-cloud');
  const sub = await counter(cloud.url, `${CLUSTER_PREFIX}/#`, MESSAGES);
  const agent = await ours('b-agent', cloud.url);
  const pub = await publisher(agent.url, PROTOCOL);
  const start = performance.now();
  await publish(pub, 0, MESSAGES);
  await sub.all;
  await cleanup();
  rmSync(path.join(work, 'b-agent'), { recursive: true, force: true });
  return (MESSAGES * 1000) / (sub.last - start);
}

/**
 * Ours with a mosquitto sidecar as the node broker (--broker-url): the
 * producer publishes to it; the agent's uplink reads it as a bridge would.
 */
async function edgeToCloudSidecar(): Promise<number> {
  const cloud = await broker('b-cloud-s');
  const sidecar = await broker('b-sidecar');
  const sub = await counter(cloud.url, `${CLUSTER_PREFIX}/#`, MESSAGES);
  await ours('b-agent-sidecar', cloud.url, { sidecarUrl: sidecar.url });
  const pub = await publisher(sidecar.url, PROTOCOL);
  const start = performance.now();
  await publish(pub, 0, MESSAGES);
  await sub.all;
  await cleanup();
  rmSync(path.join(work, 'b-agent-sidecar'), { recursive: true, force: true });
  return (MESSAGES * 1000) / (sub.last - start);
}

/** Mosquitto: a node mosquitto with a bridge to the cloud mosquitto. */
async function edgeToCloudMosquitto(): Promise<number> {
  const cloud = await broker('b-cloud-m');
  const bridge = await broker('b-bridge', bridgeConfig(cloud));
  const sub = await counter(cloud.url, `${CLUSTER_PREFIX}/#`, MESSAGES);
  await sleep(1500); // the bridge connects
  const pub = await publisher(bridge.url, PROTOCOL);
  const start = performance.now();
  await publish(pub, 0, MESSAGES);
  await sub.all;
  await cleanup();
  return (MESSAGES * 1000) / (sub.last - start);
}

async function edgeToCloud(): Promise<void> {
  const embedded: number[] = [];
  const sidecar: number[] = [];
  const theirs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    embedded.push(await edgeToCloudOurs());
    sidecar.push(await edgeToCloudSidecar());
    theirs.push(await edgeToCloudMosquitto());
  }
  rows.push({
    what: `(b) edge-to-cloud, uplink up (embedded broker), MQTT ${PROTOCOL === 5 ? '5' : '3.1.1'}`,
    ours: perSecond(median(embedded)),
    mosquitto: perSecond(median(theirs)),
    target: '>= 80% of mosquitto',
    met: share(median(embedded), median(theirs)),
  });
  rows.push({
    what: '    the same with a mosquitto sidecar',
    ours: perSecond(median(sidecar)),
    mosquitto: perSecond(median(theirs)),
    target: '>= 80% of mosquitto',
    met: share(median(sidecar), median(theirs)),
  });
  rounds.push(
    `(b) embedded ${embedded.map(perSecond).join(', ')}; sidecar ${sidecar.map(perSecond).join(', ')}; mosquitto bridge ${theirs.map(perSecond).join(', ')}`,
  );
}

/** Messages a second appended durably (group commit) by a producer with 20 appends of 100 in flight. */
async function enqueueOnce(): Promise<number> {
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
  return (count * 1000) / ms;
}

async function enqueueRate(): Promise<void> {
  const count = Math.min(BACKLOG, 500_000);
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) rates.push(await enqueueOnce());
  const r = median(rates);
  rounds.push(`(c) durable enqueue ${rates.map(perSecond).join(', ')}`);
  rows.push({
    what: `(c) durable enqueue, group commit (${count.toLocaleString('en')})`,
    ours: `${Math.round(r).toLocaleString('en')}/s`,
    mosquitto: 'n/a (no durable ack)',
    target: '>= 100,000/s',
    met: r >= 100_000 ? 'yes' : 'NO',
  });
}

/**
 * Ours: the agent's spool holds BACKLOG messages made while the cloud was
 * down; the agent starts with the cloud up and drains it. Returns the rate
 * and the agent's peak RSS.
 */
async function replayOurs(): Promise<{ rate: number; peakRss: number }> {
  const spool = await openSpool({
    dir: spoolDirOf('c-agent'),
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
      batch.push({ key: key(i), topic: topic(i), payload: payload(i), timestamp: Date.now() });
    pending.push(spool.append(batch));
    if (pending.length >= 10) await pending.shift();
  }
  await Promise.all(pending);
  await spool.close();
  const cloud = await broker('c-cloud');
  const sub = await counter(cloud.url, `${CLUSTER_PREFIX}/#`, BACKLOG);
  const start = performance.now();
  const { agent } = await ours('c-agent', cloud.url);
  const pid = agent.process.pid;
  if (pid === undefined) throw new Error('the replaying agent has no pid');
  let peakRss = 0;
  const sampling = (async () => {
    while (sub.distinct < BACKLOG) {
      peakRss = Math.max(peakRss, rssOf(pid));
      await sleep(250);
    }
  })();
  await sub.all;
  await sampling;
  await cleanup();
  rmSync(path.join(work, 'c-agent'), { recursive: true, force: true });
  return { rate: (BACKLOG * 1000) / (sub.last - start), peakRss };
}

/** Mosquitto: the bridge queues BACKLOG messages while the cloud is down, then drains. */
async function replayMosquitto(): Promise<number> {
  const cloud = await broker('c-cloud-m');
  const sub = await counter(cloud.url, `${CLUSTER_PREFIX}/#`, BACKLOG);
  await cloud.stop();
  const bridge = await broker('c-bridge', bridgeConfig(cloud));
  const pub = await publisher(bridge.url);
  await publish(pub, 0, BACKLOG);
  const start = performance.now();
  await cloud.start();
  await sub.all;
  await cleanup();
  return (BACKLOG * 1000) / (sub.last - start);
}

async function replay(): Promise<void> {
  const mine: number[] = [];
  const theirs: number[] = [];
  let peakRss = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const run = await replayOurs();
    mine.push(run.rate);
    peakRss = Math.max(peakRss, run.peakRss);
    theirs.push(await replayMosquitto());
  }
  rows.push({
    what: `(c) replay after outage (${BACKLOG.toLocaleString('en')})`,
    ours: perSecond(median(mine)),
    mosquitto: perSecond(median(theirs)),
    target: '>= 80% of mosquitto',
    met: share(median(mine), median(theirs)),
  });
  rows.push({
    what: '    RSS of the agent during replay',
    ours: `${Math.round(peakRss / 1024 / 1024)} MB peak`,
    mosquitto: '-',
    target: '< 150 MB',
    met: peakRss < 150 * 1024 * 1024 ? 'yes' : 'NO',
  });
  rounds.push(
    `(c) replay: ours ${mine.map(perSecond).join(', ')}; mosquitto bridge ${theirs.map(perSecond).join(', ')}`,
  );
}

async function lostAfterKill(): Promise<void> {
  // Ours: the cloud is down; the agent acknowledges each message once it is
  // durable in its spool; SIGKILL it, start it again, bring the cloud up, count
  // what never arrives of what the producer had acknowledged.
  const cloud = await broker('d-cloud');
  const sub = await counter(cloud.url, `${CLUSTER_PREFIX}/#`, KILL_MESSAGES);
  await cloud.stop();
  const port = await freePort();
  const first = await ours('d-agent', cloud.url, { port });
  const pub = await publisher(first.url, 4);
  const acked = await publish(pub, 0, KILL_MESSAGES);
  await sleep(200);
  first.agent.process.killNow();
  await first.agent.process.waitForExit();
  await ours('d-agent', cloud.url, { port });
  await cloud.start();
  await Promise.race([sub.all, sleep(60_000)]);
  const mine = acked - sub.distinct;
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
    ours: String(mine),
    mosquitto: String(theirs),
    target: 'ours = 0',
    met: mine === 0 ? 'yes' : 'NO',
  });
}

try {
  console.log(
    `data plane benchmark: MESSAGES=${MESSAGES} BACKLOG=${BACKLOG} KILL_MESSAGES=${KILL_MESSAGES}, ${PAYLOAD_BYTES}-byte payloads; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (shared machine: figures are noisy)`,
  );
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
  // PARTS picks some of a, b, c, d (default all).
  const parts = process.env.PARTS ?? 'abcd';
  if (parts.includes('a')) await localThroughput();
  if (parts.includes('b')) await edgeToCloud();
  if (parts.includes('c')) await enqueueRate();
  if (parts.includes('c')) await replay();
  if (parts.includes('d')) await lostAfterKill();
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
if (ROUNDS > 1) for (const r of rounds) console.log(`rounds: ${r}`);
console.log(
  `load average after: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
