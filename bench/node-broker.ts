// Local publish -> subscriber through the node broker: 256-byte QoS 1
// messages from one publisher (at most WINDOW unacknowledged) to one
// subscriber, through a real agent process's embedded broker (aedes behind our
// authentication, access control and size guard) and, side by side, a
// mosquitto on the same machine. Prints throughput, latency percentiles, and
// the agent's event-loop lag while it brokers. MESSAGES and WINDOW set the sizes.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { startAgent } from '../test/harness/agent.ts';
import { startMosquitto } from '../test/harness/mosquitto.ts';
import { scratchDir } from '../test/harness/workdir.ts';

const MESSAGES = Number(process.env.MESSAGES ?? '50000');
const WINDOW = Number(process.env.WINDOW ?? '100');
const ROUNDS = Number(process.env.ROUNDS ?? '3');
const PAYLOAD_BYTES = 256;
const TOPIC = 'edgebridge/v1/bench/dev-1/data';

interface Result {
  broker: string;
  msgsPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  note: string;
}

/** One round: returns messages/s and per-message latencies (ms). */
async function round(
  url: string,
  auth: { username?: string; password?: string },
): Promise<{ rate: number; latencies: Float64Array }> {
  const options = { reconnectPeriod: 0, protocolVersion: 4 as const, ...auth };
  const sub: MqttClient = await connectAsync(url, options);
  const pub: MqttClient = await connectAsync(url, options);
  const latencies = new Float64Array(MESSAGES);
  let received = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  sub.on('message', (_t, payload) => {
    latencies[received] = performance.now() - payload.readDoubleLE(0);
    received += 1;
    if (received === MESSAGES) resolveDone();
  });
  await sub.subscribeAsync(TOPIC, { qos: 1 });
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  const started = performance.now();
  let sent = 0;
  // WINDOW publishers in a loop: at most WINDOW messages await their PUBACK.
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (sent < MESSAGES) {
        sent += 1;
        const p = Buffer.from(payload);
        p.writeDoubleLE(performance.now(), 0);
        await pub.publishAsync(TOPIC, p, { qos: 1 });
      }
    }),
  );
  await done;
  const seconds = (performance.now() - started) / 1000;
  await Promise.all([pub.endAsync(), sub.endAsync()]);
  return { rate: MESSAGES / seconds, latencies };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

async function measure(
  name: string,
  url: string,
  auth: { username?: string; password?: string },
  note: () => Promise<string>,
): Promise<Result> {
  await round(url, auth); // warm-up
  const rates: number[] = [];
  let all = new Float64Array(0);
  for (let i = 0; i < ROUNDS; i++) {
    const r = await round(url, auth);
    rates.push(r.rate);
    const merged = new Float64Array(all.length + r.latencies.length);
    merged.set(all);
    merged.set(r.latencies, all.length);
    all = merged;
  }
  all.sort();
  rates.sort((a, b) => a - b);
  return {
    broker: name,
    msgsPerSecond: rates[Math.floor(rates.length / 2)] ?? NaN,
    p50: percentile(all, 0.5),
    p99: percentile(all, 0.99),
    max: all[all.length - 1] ?? NaN,
    note: await note(),
  };
}

const dir = scratchDir('bench-node-broker');
const results: Result[] = [];
const mosquitto = await startMosquitto({ name: 'bench', persistence: false });
const config = path.join(dir, 'edgebridge.yaml');
writeFileSync(
  config,
  stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'bench', namespace: 'bench' },
    stringData: { password: 'bench' },
  }),
);
const brokerConfig = path.join(dir, 'broker.yaml');
writeFileSync(
  brokerConfig,
  stringify({
    users: [
      {
        name: 'bench',
        passwordFrom: { secretKeyRef: { namespace: 'bench', name: 'bench', key: 'password' } },
        devices: [{ namespace: 'bench', publish: true }],
      },
    ],
  }),
);
const agent = await startAgent({
  node: 'bench-broker',
  registryArgs: ['--standalone', '--config', config, '--state-dir', path.join(dir, 'state')],
  extraArgs: ['--broker-config', brokerConfig],
});
try {
  const agentUrl = agent.brokerUrl ?? '';
  const lag = async (): Promise<string> =>
    `agent event-loop lag p99 ${(1000 * (await agent.metric('edgebridge_nodejs_eventloop_lag_seconds', { quantile: '0.99' }))).toFixed(1)} ms, CPU ${(await agent.metric('edgebridge_process_cpu_seconds_total')).toFixed(1)} s so far`;
  results.push(
    await measure(
      'edgebridge embedded (aedes)',
      agentUrl,
      { username: 'bench', password: 'bench' },
      lag,
    ),
  );
  results.push(await measure('mosquitto 2', mosquitto.url, {}, () => Promise.resolve('')));
} finally {
  await agent.stop();
  await mosquitto.stop();
}

console.log(
  `\n${MESSAGES} x ${PAYLOAD_BYTES}-byte QoS 1 messages, window ${WINDOW}, median of ${ROUNDS} rounds (latencies over all rounds)\n`,
);
console.log(
  `${'broker'.padEnd(30)} ${'msgs/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)}  note`,
);
for (const r of results) {
  console.log(
    `${r.broker.padEnd(30)} ${r.msgsPerSecond.toFixed(0).padStart(9)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${r.max.toFixed(1).padStart(8)}  ${r.note}`,
  );
}
