// MQTT sensors (Home Assistant discovery) on a mosquitto of their own, all on loopback.
//   The handler alone, in this process: SENSORS (default 5,000) sensors
//   announced in one burst until one list holds them all, this process's RSS
//   then, and readings handed to the publisher per second while each sensor
//   sends one a second for SECONDS (default 10).
//   Through a standalone agent (embedded node broker and registry):
//   announcement -> Device (edgebridge_devices), ROUNDS times (default 10);
//   AGENT_SENSORS (default 5,000) in one burst -> Devices, and the agent's RSS;
//   readings republished per second on the node broker's data topics, counted
//   at each stage: offered by the producer (PRODUCERS connections, default 4,
//   QoS 0, pipelined), delivered by the sensor broker (a tap subscriber),
//   published by the handler into the node broker, received by a pod-like reader.
//   npm run bench -- discovery-mqtt   (KEEP=1: keep the logs; AGENT_NODE_ARGS='--cpu-prof ...': profile the agent)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync } from 'mqtt';
import pino from 'pino';
import { checkedLists } from '../discovery-handlers/checked-lists.ts';
import { mqttHandler } from '../discovery-handlers/mqtt/index.ts';
import { stringify } from 'yaml';
import { startAgent, type AgentProcess } from '../test/harness/agent.ts';
import { SensorFleet } from './helpers/sensor-fleet.ts';
import { AGENT_NODE_ARGS } from '../test/harness/node-flags.ts';
import { startMosquitto, type Mosquitto } from '../test/harness/mosquitto.ts';
import { writeStandaloneConfig } from '../test/harness/standalone-config.ts';

const ROUNDS = Math.min(Number(process.env.ROUNDS ?? 10), 100);
const SENSORS = Math.min(Number(process.env.SENSORS ?? 5000), 20_000);
const AGENT_SENSORS = Math.min(Number(process.env.AGENT_SENSORS ?? 5000), 20_000);
const SECONDS = Math.min(Number(process.env.SECONDS ?? 10), 60);
const PRODUCERS = Math.min(Number(process.env.PRODUCERS ?? 4), 64);
/** mosquitto's `log_type all` (the harness's default) writes a line per message: not what is measured. */
const QUIET_MOSQUITTO = ['log_type none', 'log_type error', 'log_type warning'];
const work = mkdtempSync(path.join(tmpdir(), 'edgebridge-bench-discovery-mqtt-'));
process.env.EDGEBRIDGE_TEST_RUN_DIR = work;
// The embedded registry fsyncs a file per Device; on a disk shared with other
// work that, not the handler, sets the pace. STATE_DIR=disk measures that instead.
const stateDir =
  process.env.STATE_DIR === 'disk'
    ? path.join(work, 'state')
    : mkdtempSync('/dev/shm/edgebridge-bench-state-');

const agentArgs =
  process.env.AGENT_NODE_ARGS !== undefined
    ? process.env.AGENT_NODE_ARGS.split(' ').filter((a) => a !== '')
    : process.env.SOURCES === '1'
      ? []
      : AGENT_NODE_ARGS;
const BUILT = path.resolve(import.meta.dirname, '../dist/src/cli/main.js');
if (process.env.SOURCES !== '1') {
  const build = spawnSync('npm', ['run', 'build'], {
    cwd: path.resolve(import.meta.dirname, '..'),
    stdio: 'inherit',
  });
  if (build.status !== 0) throw new Error('npm run build failed');
}

let sensors: Mosquitto | undefined;
let agent: AgentProcess | undefined;
try {
  sensors = await startMosquitto({
    name: 'bench-sensors',
    persistence: false,
    extraConfig: QUIET_MOSQUITTO,
  });
  // ALONE=0 skips the handler-alone part.
  const alone = process.env.ALONE === '0' ? undefined : await handlerAlone(sensors.url);
  const config = path.join(work, 'edgebridge.yaml');
  writeStandaloneConfig(config, {
    discoveries: [
      {
        namespace: 'default',
        name: 'bench',
        spec: {
          handler: {
            name: 'mqtt',
            details: { brokerUrl: sensors.url, conventions: ['homeassistant'] },
          },
          gracePeriodSeconds: 1,
        },
      },
    ],
    secrets: [{ namespace: 'default', name: 'users', stringData: { reader: 'reader-pw' } }],
  });
  const brokerConfig = path.join(work, 'broker.yaml');
  writeFileSync(
    brokerConfig,
    stringify({
      users: [
        {
          name: 'reader',
          passwordFrom: { secretKeyRef: { namespace: 'default', name: 'users', key: 'reader' } },
          devices: [{ namespace: 'default', publish: false }],
        },
      ],
    }),
  );
  agent = await startAgent({
    node: 'bench-node',
    registryArgs: ['--standalone', '--config', config, '--state-dir', stateDir],
    extraArgs: ['--broker-config', brokerConfig, '--log-level', 'info'],
    // As the image runs it (built JavaScript, V8's lite mode), unless SOURCES=1.
    ...(process.env.SOURCES === '1' ? {} : { cli: BUILT }),
    nodeArgs: agentArgs,
  });
  const running = agent;
  /** A metric of the agent, scraped again if a busy agent does not answer in time. */
  const scrape = (name: string, labels?: Record<string, string>): Promise<number> =>
    until(`metric ${name}`, () => running.metric(name, labels), 120_000);
  const devices = (): Promise<number> =>
    running.metric('edgebridge_devices', { discovery: 'bench' });
  const fleet = await SensorFleet.connect(sensors.url, PRODUCERS, 'bench-sensors');
  const sensor = await connectAsync(sensors.url, { clientId: 'bench-sensors' });
  const announce = (i: number, prefix: string) =>
    fleet.publish(
      i,
      `${prefix}/sensor/s${i}/config`,
      JSON.stringify({
        name: 'Temperature',
        stat_t: `bench/s${i}/state`,
        val_tpl: '{{ value_json.t }}',
        dev: { ids: `${prefix}-s${i}`, mf: 'Bench' },
      }),
      { retain: true },
    );
  const withdraw = (i: number, prefix: string) =>
    sensor.publishAsync(`${prefix}/sensor/s${i}/config`, '', { qos: 1, retain: true });
  await until('the handler running', () =>
    Promise.resolve(
      readFileSync(running.logFile, 'utf8').includes('"connected to the sensor broker"')
        ? true
        : undefined,
    ),
  );

  const rssIdle = rssMb(running.process.pid);

  // Announcement -> Device, one at a time.
  const announced: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    announce(i, 'homeassistant');
    await until('the Device', async () => ((await devices()) === 1 ? true : undefined));
    announced.push(performance.now() - t);
    await withdraw(i, 'homeassistant');
    await until('the Device gone', async () => ((await devices()) === 0 ? true : undefined));
  }

  // The burst.
  const t0 = performance.now();
  for (let i = 0; i < AGENT_SENSORS; i++) announce(i, 'homeassistant');
  await until(
    `${AGENT_SENSORS} Devices`,
    async () => ((await devices()) >= AGENT_SENSORS ? true : undefined),
    300_000,
  );
  const listedMs = performance.now() - t0;
  // edgebridge_devices counts what the handler lists; the Devices are stored when their files are.
  const stored = path.join(stateDir, 'registry', 'devices', 'default');
  await until(
    `${AGENT_SENSORS} Device files`,
    () =>
      Promise.resolve(
        readdirSync(stored).filter((f) => f.endsWith('.json')).length >= AGENT_SENSORS
          ? true
          : undefined,
      ),
    300_000,
  );
  const burstMs = performance.now() - t0;
  const rss = rssMb(running.process.pid);
  const heap = await scrape('edgebridge_nodejs_heap_size_used_bytes');
  const external = await scrape('edgebridge_nodejs_external_memory_bytes');

  // Readings: every sensor once a second, in ten slices of the second.
  const tap = await connectAsync(sensors.url, { clientId: 'bench-tap' });
  let tapped = 0;
  tap.on('message', () => (tapped += 1));
  await tap.subscribeAsync('bench/+/state', { qos: 0 });
  const reader = await connectAsync(running.brokerUrl ?? '', {
    clientId: 'bench-reader',
    username: 'reader',
    password: 'reader-pw',
  });
  let received = 0;
  reader.on('message', () => (received += 1));
  await reader.subscribeAsync('edgebridge/v1/default/+/data', { qos: 0 });
  const published = () => scrape('edgebridge_broker_messages_received_total', { source: 'agent' });
  const cpu = () => scrape('edgebridge_process_cpu_seconds_total');
  const before = {
    sent: fleet.sent,
    tapped,
    published: await published(),
    received,
    cpu: await cpu(),
  };
  const t1 = performance.now();
  const perSecond = await readingsPerSecond(
    AGENT_SENSORS,
    () => received,
    (i, n) => fleet.publish(i, `bench/s${i}/state`, `{"t":${n}}`),
  );
  const stageSeconds = (performance.now() - t1) / 1000;
  const rate = (n: number) => (n / stageSeconds).toFixed(0);
  const stages = {
    sent: rate(fleet.sent - before.sent),
    tapped: rate(tapped - before.tapped),
    published: rate((await published()) - before.published),
    received: rate(received - before.received),
  };
  const rssAfter = rssMb(running.process.pid);
  // What is still on its way is handled before the CPU per reading is read.
  let last = -1;
  for (let n = await published(); n !== last; n = await published()) {
    last = n;
    await sleep(1000);
  }
  const handled = last - before.published;
  const cpuPerReading = ((await cpu()) - before.cpu) / Math.max(1, handled);

  if (alone !== undefined)
    console.log(
      `  handler alone: ${SENSORS} sensors in one burst listed in ${(alone.listedMs / 1000).toFixed(1)} s (RSS of that process ${alone.rss} MB); ${alone.perSecond.toFixed(0)} readings/s of ${SENSORS}/s sent`,
    );
  console.log(
    `discovery-mqtt (load ${loadavg()[0]?.toFixed(1)}, mosquitto on loopback, state dir ${stateDir.startsWith('/dev/shm') ? 'tmpfs' : 'disk'}, agent ${process.env.SOURCES === '1' ? 'from the sources' : 'built'}, node flags: ${agentArgs.join(' ') || 'none'})`,
  );
  const s = [...announced].sort((a, b) => a - b);
  console.log(
    `  MQTT announcement -> Device:           median ${(s[Math.floor(s.length / 2)] ?? 0).toFixed(0)} ms, max ${(s.at(-1) ?? 0).toFixed(0)} ms  (target < 500 ms, ${ROUNDS} rounds)`,
  );
  console.log(
    `  ${AGENT_SENSORS} sensors in one burst -> Devices: listed in ${(listedMs / 1000).toFixed(1)} s, all stored in ${(burstMs / 1000).toFixed(1)} s`,
  );
  console.log(
    `  agent RSS with ${AGENT_SENSORS} sensors:       ${rss} MB (target < 150 MB); ${rssAfter} MB after the readings, ${rssIdle} MB before any sensor`,
  );
  console.log(
    `  heap ${(heap / 1024 / 1024).toFixed(0)} MB, external ${(external / 1024 / 1024).toFixed(0)} MB with them; RSS per sensor ${(((Number(rss) - Number(rssIdle)) * 1024 * 1024) / AGENT_SENSORS).toFixed(0)} bytes`,
  );
  console.log(
    `  readings republished:                  ${perSecond.toFixed(0)}/s of ${AGENT_SENSORS}/s sent (${SECONDS} s)`,
  );
  console.log(
    `  per stage, /s over the ${SECONDS} s: producer ${stages.sent} (${PRODUCERS} connections), sensor broker delivered ${stages.tapped}, handler published ${stages.published}, reader received ${stages.received}`,
  );
  console.log(
    `  agent CPU per reading (handler, node broker, delivery): ${(cpuPerReading * 1e6).toFixed(0)} µs, so one core carries ~${(1 / cpuPerReading).toFixed(0)} readings/s; ${handled} of ${fleet.sent - before.sent} sent were republished in the end`,
  );
  await tap.endAsync(true);
  await reader.endAsync(true);
  await fleet.close();
  await sensor.endAsync(true);
} finally {
  await agent?.stop();
  await sensors?.stop();
  if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
  if (!stateDir.startsWith(work)) rmSync(stateDir, { recursive: true, force: true });
}

/** The handler in this process with a publisher that counts readings. */
async function handlerAlone(
  url: string,
): Promise<{ listedMs: number; rss: string; perSecond: number }> {
  const log = pino({ level: 'warn' });
  const abort = new AbortController();
  let readings = 0;
  const publish = {
    data: () => void (readings += 1),
    state: () => undefined,
    event: () => undefined,
  };
  const sensor = await connectAsync(url, { clientId: 'bench-alone' });
  const t0 = performance.now();
  for (let i = 0; i < SENSORS; i++)
    void sensor.publishAsync(
      `alone/sensor/s${i}/config`,
      JSON.stringify({ stat_t: `alone/s${i}/state`, dev: { ids: `alone-s${i}` } }),
      { qos: 0, retain: true },
    );
  let listedMs: number | undefined;
  const lists = checkedLists(
    mqttHandler.discover(
      mqttHandler.validate({
        brokerUrl: url,
        conventions: ['homeassistant'],
        prefixes: { homeassistant: 'alone' },
      }),
      { signal: abort.signal, log, node: 'bench', secrets: {}, intervalSeconds: 30, publish },
    ),
    log,
  );
  const done = (async () => {
    for await (const list of lists) if (list.length >= SENSORS) listedMs ??= performance.now() - t0;
  })();
  await until(
    'the handler to list every sensor',
    () => Promise.resolve(listedMs === undefined ? undefined : true),
    300_000,
  );
  const rss = (process.memoryUsage().rss / 1024 / 1024).toFixed(0);
  // Its state topics are subscribed once the list is out; give the SUBACK a moment.
  await sleep(1000);
  const perSecond = await readingsPerSecond(
    SENSORS,
    () => readings,
    (i, n) => void sensor.publishAsync(`alone/s${i}/state`, String(n), { qos: 0 }),
  );
  abort.abort();
  await done;
  for (let i = 0; i < SENSORS; i++)
    void sensor.publishAsync(`alone/sensor/s${i}/config`, '', { qos: 0, retain: true });
  await sensor.endAsync();
  return { listedMs: listedMs ?? 0, rss, perSecond };
}

/** Each of `n` sensors sends a reading a second, in ten slices of the second; what got through per second after the first. */
async function readingsPerSecond(
  n: number,
  received: () => number,
  send: (i: number, second: number) => void,
): Promise<number> {
  const sliceSize = Math.ceil(n / 10);
  const start = performance.now();
  let counted = 0;
  for (let second = 0; second < SECONDS; second++) {
    for (let slice = 0; slice < 10; slice++) {
      for (let i = slice * sliceSize; i < Math.min(n, (slice + 1) * sliceSize); i++)
        send(i, second);
      await sleep(Math.max(0, start + second * 1000 + (slice + 1) * 100 - performance.now()));
    }
    if (second === 0) counted = received();
  }
  return (received() - counted) / ((performance.now() - start) / 1000 - 1);
}

function rssMb(pid: number | undefined): string {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return (kb / 1024).toFixed(0);
}

/** Polls `check` every 20 ms until it gives a value; fails after `ms`. A check that throws (a scrape of a busy agent timing out) is tried again. */
async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await check().catch((err: unknown) => {
      last = err;
      return undefined;
    });
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}`, last === undefined ? {} : { cause: last });
    await sleep(20);
  }
}
