// The agent's spool file damaged while the agent was stopped, and a spool
// directory it cannot write: in both, the real agent process starts and
// serves (readiness, the node broker, discovery); a damaged file is kept
// aside, counted, logged once, and the messages in it that verify reach the
// cloud broker; an unwritable directory only turns the uplink off.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { deviceName } from '../../src/api/names.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { startMosquitto } from '../harness/mosquitto.ts';
import { recordArrivals, waitFor } from '../harness/mqtt-peers.ts';
import { freePort } from '../harness/ports.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { scratchDir } from '../harness/workdir.ts';

const NODE = `spool-damage-${process.pid}`;
const NS = 'default';
const CLUSTER = 'c1';
const IDS = ['dev-a', 'dev-b', 'dev-c'];
const DEVICES = IDS.map((id) => deviceName('sims', id, true, NODE));

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** An agent's files: standalone config with three simulated devices, broker users, uplink. */
function agentFiles(
  cloudUrl: string,
  maxBytes = '64Mi',
): {
  dir: string;
  stateDir: string;
  spoolDir: string;
  args: (brokerPort: number) => string[];
  start: (brokerPort: number) => Promise<AgentProcess>;
} {
  const dir = scratchDir('agent-spool-damage');
  const config = path.join(dir, 'edgebridge.yaml');
  writeStandaloneConfig(config, {
    discoveries: [
      {
        namespace: NS,
        name: 'sims',
        spec: {
          handler: { name: 'simulated', details: { devices: IDS.map((id) => ({ id })) } },
          uplink: { enabled: true },
        },
      },
    ],
    secrets: [{ namespace: NS, name: 'broker-users', stringData: { producer: 'produce-it' } }],
  });
  const brokerConfig = path.join(dir, 'broker.yaml');
  writeFileSync(
    brokerConfig,
    stringify({
      users: [
        {
          name: 'producer',
          passwordFrom: { secretKeyRef: { namespace: NS, name: 'broker-users', key: 'producer' } },
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
      spool: { dir: 'uplink-spool', maxBytes, onFull: 'block', sync: 'group' },
    }),
  );
  const stateDir = path.join(dir, 'state');
  const registryArgs = ['--standalone', '--config', config, '--state-dir', stateDir];
  const extraArgs = (brokerPort: number): string[] => [
    '--broker-host',
    '127.0.0.1',
    '--broker-port',
    String(brokerPort),
    '--broker-config',
    brokerConfig,
    '--uplink-config',
    uplinkConfig,
  ];
  return {
    dir,
    stateDir,
    spoolDir: path.join(stateDir, 'uplink-spool'),
    args: (brokerPort) => [...registryArgs, ...extraArgs(brokerPort)],
    start: (brokerPort) =>
      startAgent({ node: NODE, registryArgs, extraArgs: extraArgs(brokerPort) }),
  };
}

/** A device-side client (MQTT 3.1.1, as the embedded broker speaks). */
async function producer(port: number): Promise<MqttClient> {
  const client = await connectAsync(`mqtt://producer:produce-it@127.0.0.1:${port}`, {
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  client.on('error', () => undefined);
  return client;
}

/** The agent serves: it is ready, its broker takes a CONNECT, and discovery registered the devices. */
async function assertServes(agent: AgentProcess, brokerPort: number): Promise<void> {
  assert.equal((await agent.get('/readyz')).status, 200);
  assert.equal((await agent.get('/healthz')).status, 200);
  const client = await producer(brokerPort);
  await client.endAsync(true);
  await agent.process.waitUntil('discovery to register the three devices', async () =>
    (await agent.metric('edgebridge_devices')) === DEVICES.length ? true : undefined,
  );
}

describe('an agent whose spool is damaged or cannot be written', () => {
  it('a spool file with a zeroed header: kept aside, counted, logged once; the agent serves and the salvaged messages reach the cloud', async () => {
    const cloud = await startMosquitto({ name: 'spool-damage-cloud' });
    cleanups.push(() => cloud.stop());
    const recorder = await recordArrivals(cloud.url, `edgebridge/${CLUSTER}/${NODE}/#`);
    cleanups.push(() => recorder.close());
    // The cloud is away while messages are acknowledged: they stay in the spool.
    await cloud.stop();

    const files = agentFiles(cloud.url);
    const brokerPort = await freePort();
    const first = await files.start(brokerPort);
    cleanups.push(() => first.stop());
    const client = await producer(brokerPort);
    const acked: string[] = [];
    for (let n = 0; n < 200; n++) {
      for (const device of DEVICES) {
        const text = `${device}:${n}`;
        await client.publishAsync(`edgebridge/v1/${NS}/${device}/data`, text, { qos: 1 });
        acked.push(text);
      }
    }
    await client.endAsync(true);
    await first.stop();

    const file = path.join(files.spoolDir, 'spool.db');
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(100), 0, 100, 0);
    closeSync(fd);
    await cloud.start();

    const agent = await files.start(brokerPort);
    cleanups.push(() => agent.stop());
    await assertServes(agent, brokerPort);

    const aside = readdirSync(files.spoolDir).filter((f) =>
      /^spool\.db\.damaged-\d{8}T\d{6}Z$/.test(f),
    );
    assert.equal(aside.length, 1, readdirSync(files.spoolDir).join(', '));
    assert.equal(await agent.metric('edgebridge_spool_damaged_files_total'), 1);
    const salvaged = await agent.metric('edgebridge_spool_salvaged_total');
    const lines = agent.logLines().filter((l) => /spool file damaged/.test(String(l.msg)));
    assert.equal(lines.length, 1, 'one log line for the damaged file');
    const line = lines[0] ?? {};
    assert.equal(line.level, 50, 'logged as an error');
    assert.equal(line.file, file);
    assert.equal(line.movedTo, path.join(files.spoolDir, aside[0] ?? ''));
    assert.equal(typeof line.reason, 'string');
    assert.doesNotMatch(JSON.stringify(line), /dev-[abc]|:\d+"/);

    await waitFor(
      'every acknowledged message at the cloud',
      () => acked.every((k) => recorder.distinct.has(k)),
      60_000,
      () => `${acked.filter((k) => !recorder.distinct.has(k)).length} of ${acked.length} missing`,
    );
    console.log(
      `agent spool damage: ${acked.length} acknowledged and unsent, ${salvaged} salvaged, ${recorder.distinct.size} at the cloud`,
    );
    assert.equal(salvaged, acked.length);
    assert.equal(await agent.metric('edgebridge_spool_lost_total'), 0);
  });

  it('a spool directory on a read-only mount: discovery and the node broker run, the uplink is off and says so', async () => {
    const cloud = await startMosquitto({ name: 'spool-readonly-cloud' });
    cleanups.push(() => cloud.stop());
    const files = agentFiles(cloud.url);
    mkdirSync(files.spoolDir, { recursive: true });
    const bind = spawnSync('mount', ['--bind', files.spoolDir, files.spoolDir], {
      encoding: 'utf8',
    });
    assert.equal(bind.status, 0, bind.stderr);
    cleanups.push(() => {
      spawnSync('umount', [files.spoolDir]);
      return Promise.resolve();
    });
    const ro = spawnSync('mount', ['-o', 'remount,ro,bind', files.spoolDir], { encoding: 'utf8' });
    assert.equal(ro.status, 0, ro.stderr);

    const brokerPort = await freePort();
    const agent = await files.start(brokerPort);
    cleanups.push(() => agent.stop());
    await assertServes(agent, brokerPort);
    assert.equal(
      await agent.metric('edgebridge_uplink_off', { code: 'EDGEBRIDGE_SPOOL_DIR_UNWRITABLE' }),
      1,
    );
    const lines = agent.logLines().filter((l) => /uplink off/.test(String(l.msg)));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, 50);
    // A device client's messages are still taken by the node broker.
    const client = await producer(brokerPort);
    await client.publishAsync(`edgebridge/v1/${NS}/${DEVICES[0] ?? ''}/data`, 'x', { qos: 1 });
    await client.endAsync(true);
    assert.equal(agent.process.exited, false);
  });

  it('a spool.maxBytes below what one message needs: a configuration error at start naming the field and the minimum', async () => {
    const files = agentFiles('mqtt://127.0.0.1:1', '100Ki');
    writeFileSync(
      path.join(files.dir, 'broker.yaml'),
      stringify({ maxPacketBytes: 65536, users: [] }),
    );
    const cli = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
    const run = spawnSync(
      process.execPath,
      [cli, 'agent', '--node', NODE, '--http-port', '0', ...files.args(await freePort())],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(run.status, 2, run.stderr);
    // 65,536 bytes of packet, its id, a key as long as its longest topic, the record overhead.
    assert.match(
      run.stderr,
      /spool\.maxBytes: 102400 is below what one message needs: at least 131155 bytes/,
    );
    assert.equal(readdirSync(files.dir).includes('state'), false, 'nothing started');
  });
});
