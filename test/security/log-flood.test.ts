// A log flood on purpose: the agent's spool sits on a full 2 MiB disk, its
// cloud broker is down, and a client publishes and reconnects in a tight loop,
// each time refused. Before, every refusal was a warning line (32,774 in 45 s);
// now a kind of warning repeats at most once per interval, with a count.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { stringify } from 'yaml';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { canary } from '../harness/canaries.ts';
import { startMosquitto } from '../harness/mosquitto.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { scratchDir } from '../harness/workdir.ts';
import { mountTmpfs, Scratch } from '../unit/spool/helpers.ts';

const NS = 'default';
const TOPIC = `edgebridge/v1/${NS}/flood-dev/data`;
/** Reconnect cycles the client makes; each one was a warning line before. */
const CYCLES = 500;
const MAX_WARNINGS = 50;
const PASSWORD = canary('flooder');

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
});

/** One connection: publish one QoS 1 message; true if it was acknowledged, false if the agent closed the connection instead. */
async function publishOnce(url: string, payload: Buffer): Promise<boolean> {
  const client = await connectAsync(url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  client.on('error', () => undefined);
  const closed = new Promise<boolean>((resolve) => client.once('close', () => resolve(false)));
  const acked = client.publishAsync(TOPIC, payload, { qos: 1 }).then(
    () => true,
    () => false,
  );
  const result = await Promise.race([acked, closed]);
  await client.endAsync(true);
  return result;
}

describe('log flood', () => {
  it('a client reconnecting at once against a full spool disk: bounded warnings, messages flow again once space frees', async () => {
    const scratch = new Scratch();
    cleanups.push(() => scratch.removeAll());
    const tmpfs = mountTmpfs(scratch, 2 * 1024 * 1024);
    cleanups.push(() => tmpfs.unmount());
    const cloud = await startMosquitto({
      name: 'flood-cloud',
      extraConfig: ['max_inflight_messages 1000', 'max_queued_messages 0'],
    });
    cleanups.push(() => cloud.stop());
    await cloud.stop();

    const dir = scratchDir('log-flood');
    const config = path.join(dir, 'edgebridge.yaml');
    writeStandaloneConfig(config, {
      discoveries: [],
      secrets: [{ namespace: NS, name: 'broker-users', stringData: { flooder: PASSWORD } }],
    });
    const brokerConfig = path.join(dir, 'broker.yaml');
    writeFileSync(
      brokerConfig,
      stringify({
        users: [
          {
            name: 'flooder',
            passwordFrom: { secretKeyRef: { namespace: NS, name: 'broker-users', key: 'flooder' } },
            devices: [{ namespace: NS, publish: true }],
          },
        ],
      }),
    );
    const uplinkConfig = path.join(dir, 'uplink.yaml');
    writeFileSync(
      uplinkConfig,
      stringify({
        cluster: 'c1',
        cloud: { url: cloud.url },
        topics: [{ filter: 'edgebridge/v1/+/+/data/#' }],
        discoveries: false,
        spool: { dir: path.join(tmpfs.dir, 'spool'), maxBytes: '64Mi' },
      }),
    );
    const agent: AgentProcess = await startAgent({
      node: 'flood',
      registryArgs: ['--standalone', '--config', config, '--state-dir', path.join(dir, 'state')],
      extraArgs: ['--broker-config', brokerConfig, '--uplink-config', uplinkConfig],
    });
    // Stopped before the tmpfs is unmounted (the spool's files are open).
    cleanups.push(() => agent.stop());
    const url = agent.brokerUrl?.replace('mqtt://', `mqtt://flooder:${PASSWORD}@`) ?? '';

    // Fill the disk: 1 KiB messages until the agent refuses one (it closes the connection).
    const payload = Buffer.alloc(1024, 'x');
    let stored = 0;
    for (;;) {
      const client = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
      client.on('error', () => undefined);
      const closed = new Promise<'closed'>((r) => client.once('close', () => r('closed')));
      let open = true;
      while (open) {
        const batch = Promise.allSettled(
          Array.from({ length: 50 }, () => client.publishAsync(TOPIC, payload, { qos: 1 })),
        );
        const r = await Promise.race([batch, closed]);
        if (r === 'closed') open = false;
        else stored += r.filter((x) => x.status === 'fulfilled').length;
        assert.ok(stored < 10_000, 'the 2 MiB disk never filled');
      }
      await client.endAsync(true);
      // Refused on a fresh connection too: the disk is full, not just one batch refused.
      if (!(await publishOnce(url, payload))) break;
      stored++;
    }
    const before = warnings(agent).length;

    // The flood: connect, publish, get closed, again at once.
    let refused = 0;
    for (let i = 0; i < CYCLES; i++) if (!(await publishOnce(url, payload))) refused++;
    assert.ok(refused >= CYCLES * 0.9, `only ${refused} of ${CYCLES} publishes were refused`);
    // The agent writes its log asynchronously: a last line may trail.
    await new Promise((r) => setTimeout(r, 500));
    const flood = warnings(agent).slice(before);
    assert.ok(
      flood.length < MAX_WARNINGS,
      `${flood.length} warning lines for ${refused} refusals: ${summary(flood)}`,
    );

    // Space frees as the cloud takes the backlog; then the same client is acknowledged again.
    await cloud.start();
    const deadline = Date.now() + 120_000;
    while (!(await publishOnce(url, payload))) {
      assert.ok(Date.now() < deadline, 'no publish was acknowledged after the cloud came back');
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});

function warnings(agent: AgentProcess): Record<string, unknown>[] {
  return agent.logLines().filter((l) => typeof l.level === 'number' && l.level >= 40);
}

function summary(lines: Record<string, unknown>[]): string {
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(String(l.msg), (counts.get(String(l.msg)) ?? 0) + 1);
  return JSON.stringify(Object.fromEntries(counts));
}
