// Fuzzed MQTT against the embedded node broker of a real agent: 10,000
// malformed packets (from a seed; EDGEBRIDGE_FUZZ_SEED replays a run) over
// 1,000 connections, half of them after a valid CONNECT so that the packets
// reach the parsers behind authentication. Afterwards a legitimate subscriber
// still gets a legitimate publisher's messages, the agent is alive and
// healthy, its memory is sane, and its log was not flooded.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import type { AgentProcess } from '../harness/agent.ts';
import { brokerAgent } from '../harness/broker-agent.ts';
import { PacketFuzzer } from '../harness/mqtt-fuzz.ts';
import { waitFor } from '../harness/mqtt-peers.ts';
import { openSocket } from '../harness/raw-mqtt.ts';

const NODE = `fuzz-${process.pid}`;
const SEED = Number(process.env.EDGEBRIDGE_FUZZ_SEED ?? 0x5eed);
const CONNECTIONS = 1000;
const PACKETS_PER_CONNECTION = 10;
const AT_ONCE = 25;
/** Generous: the agent idles at ~90 MB; a leak per packet or connection would pass it. */
const MAX_RSS_MB = 300;
const TOPIC = 'edgebridge/v1/lab/cam/data';
const agents: AgentProcess[] = [];
const clients: MqttClient[] = [];

after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await Promise.all(agents.map((a) => a.stop()));
});

/** Sends the bytes on one connection, ends it, and waits until it is closed. */
async function sendAndClose(url: string, packets: Buffer[]): Promise<void> {
  const socket = await openSocket(url).catch(() => undefined);
  if (socket === undefined) return;
  const closed = new Promise((resolve) => socket.once('close', resolve));
  // A broker that neither reads nor closes must not hang the test.
  const timer = setTimeout(() => socket.destroy(), 10_000);
  for (const p of packets) socket.write(p);
  socket.end();
  await closed;
  clearTimeout(timer);
}

function rssMegabytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

async function client(url: string, user: string, clientId: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    clientId,
    username: user,
    password: `${user}-pw`,
  });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

describe('the node broker under fuzzed MQTT', () => {
  it(`takes ${CONNECTIONS * PACKETS_PER_CONNECTION} malformed packets (seed ${SEED}) and serves on`, async (t) => {
    const a = await brokerAgent(NODE, [
      { name: 'fuzz', password: 'fuzz-pw', namespace: 'lab', publish: true },
      { name: 'reader', password: 'reader-pw', namespace: 'lab' },
      { name: 'writer', password: 'writer-pw', namespace: 'lab', publish: true },
    ]).start();
    agents.push(a);
    const url = a.brokerUrl ?? '';
    const pid = a.process.pid ?? assert.fail('the agent has no pid');
    const rssBefore = rssMegabytes(pid);
    // A subscriber connected all along must be served too.
    const early = await client(url, 'reader', 'reader-early');
    const earlySeen: string[] = [];
    early.on('message', (_t, payload) => earlySeen.push(payload.toString()));
    await early.subscribeAsync(TOPIC, { qos: 1 });

    const fuzzer = new PacketFuzzer(SEED, { username: 'fuzz', password: 'fuzz-pw' });
    const work = Array.from({ length: CONNECTIONS }, (_, i) => {
      const packets = Array.from({ length: PACKETS_PER_CONNECTION }, () => fuzzer.malformed());
      return i % 2 === 0 ? [fuzzer.validConnect(`fuzz-${i}`), ...packets] : packets;
    });
    const sent = work.reduce((n, packets) => n + packets.length, 0) - CONNECTIONS / 2;
    let next = 0;
    await Promise.all(
      Array.from({ length: AT_ONCE }, async () => {
        while (next < work.length) {
          const packets = work[next++] ?? [];
          await sendAndClose(url, packets);
        }
      }),
    );
    assert.equal(sent, CONNECTIONS * PACKETS_PER_CONNECTION);

    assert.equal(a.process.exited, false, `the agent exited: ${a.process.tail()}`);
    assert.equal((await a.get('/healthz')).status, 200);
    const rssAfter = rssMegabytes(pid);
    assert.ok(
      rssAfter < MAX_RSS_MB,
      `RSS ${rssAfter.toFixed(0)} MB (before ${rssBefore.toFixed(0)} MB)`,
    );
    assert.ok((await a.metric('edgebridge_broker_client_errors_total')) > 0);

    // A legitimate subscriber, new and old, still gets a legitimate publisher's messages.
    const reader = await client(url, 'reader', 'reader-after');
    const seen: string[] = [];
    reader.on('message', (_t, payload) => seen.push(payload.toString()));
    await reader.subscribeAsync(TOPIC, { qos: 1 });
    const writer = await client(url, 'writer', 'writer-after');
    const expected = Array.from({ length: 20 }, (_, i) => `after-fuzz-${i}`);
    for (const text of expected) await writer.publishAsync(TOPIC, text, { qos: 1 });
    await waitFor('the messages to reach both subscribers', () =>
      expected.every((t) => seen.includes(t) && earlySeen.includes(t)),
    );

    // Thousands of closed connections from one peer, but a handful of warnings.
    const warnings = a.logLines().filter((l) => l.level === 40).length;
    assert.ok(warnings < 100, `${warnings} warning lines for ${CONNECTIONS} bad connections`);
    const errors = await a.metric('edgebridge_broker_client_errors_total');
    const refused = await a.metric('edgebridge_broker_auth_failures_total');
    t.diagnostic(
      `RSS ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MB; ${errors} connections closed ` +
        `for bad input, ${refused} refused at CONNECT; ${warnings} warning lines`,
    );
  });
});
