// Distinct secrets planted in everything the standalone agent reads: device
// files (good and broken YAML and JSON), its config (Secrets behind a
// Discovery's properties, a broken edit of it), the node broker's config and
// password file, the uplink's config and credential file, and MQTT passwords
// on refused and accepted CONNECTs. Then every log line, /metrics, the CLI's
// view of Devices and Discoveries and every byte of the state directory are
// searched for every secret. A hit names the secret by its role, never its value.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectAsync } from 'mqtt';
import { stringify } from 'yaml';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { canary } from '../harness/canaries.ts';
import { startMosquitto } from '../harness/mosquitto.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { scratchDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const NS = 'default';

const ROLES = [
  'device YAML comment',
  'device JSON unused field',
  'broken device YAML line',
  'broken device JSON line',
  'invalid device id',
  'Secret behind spec.properties',
  'Secret nobody uses',
  'standalone config comment',
  'broken standalone config line',
  'broker user password (Secret)',
  'broker user password (file)',
  'broker config comment',
  'broken broker config line',
  'uplink password file',
  'uplink URL user',
  'uplink config comment',
  'broken uplink config line',
  'refused CONNECT, wrong password',
  'refused CONNECT, unknown user',
  'refused CONNECT, service account',
] as const;
type Role = (typeof ROLES)[number];

const secret: Record<Role, string> = Object.fromEntries(
  // Canaries: the run's sweep of every log (test/run.ts) looks for them too.
  // Not for the user in the URL: the cloud peer (mosquitto) logs user names, rightly.
  ROLES.map((r) => [
    r,
    r === 'uplink URL user' ? `user-${randomBytes(12).toString('hex')}` : canary('planted'),
  ]),
) as Record<Role, string>;

/** The roles of the secrets that `text` contains. */
function leaked(text: string): Role[] {
  return ROLES.filter((r) => text.includes(secret[r]));
}

/** Every file under `dir`, as latin1 text (binary files too: SQLite, JSON). */
function allFiles(dir: string): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    const info = statSync(file);
    if (info.isDirectory()) out.push(...allFiles(file));
    else if (info.isFile()) out.push({ file, text: readFileSync(file, 'latin1') });
  }
  return out;
}

async function cli(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: `${e.stdout}${e.stderr}` };
  }
}

/** CONNECT and, if accepted, publish one QoS 1 message; true if accepted. */
async function connectWith(url: string, username: string, password: string): Promise<boolean> {
  try {
    const c = await connectAsync(url, {
      username,
      password,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    await c
      .publishAsync(`edgebridge/v1/${NS}/some-device/data`, 'hello', { qos: 1 })
      .catch(() => undefined);
    await c.endAsync();
    return true;
  } catch {
    return false;
  }
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe('secrets never reach logs, metrics, objects or the state directory', () => {
  it('plants a distinct secret in every file and property the agent reads, and finds none', async () => {
    const dir = scratchDir('secrets');
    const stateDir = path.join(dir, 'state');
    const cloud = await startMosquitto({ name: 'secrets-cloud' });
    cleanups.push(() => cloud.stop());

    // Device files.
    const files = {
      goodYaml: path.join(dir, 'good.yaml'),
      goodJson: path.join(dir, 'good.json'),
      brokenYaml: path.join(dir, 'broken.yaml'),
      brokenJson: path.join(dir, 'broken.json'),
      badId: path.join(dir, 'bad-id.yaml'),
    };
    writeFileSync(
      files.goodYaml,
      `# api token: ${secret['device YAML comment']}\ndevices:\n  - id: dev-a\n`,
    );
    writeFileSync(
      files.goodJson,
      JSON.stringify({ devices: [{ id: 'dev-b' }], note: secret['device JSON unused field'] }),
    );
    writeFileSync(
      files.brokenYaml,
      `devices:\n  - id: dev-c\n password: ${secret['broken device YAML line']}\n  b: [\n`,
    );
    writeFileSync(
      files.brokenJson,
      `{"devices": [{"id": "dev-d", "token": "${secret['broken device JSON line']}"}]}}`,
    );
    writeFileSync(files.badId, `devices:\n  - id: "x\\u0007${secret['invalid device id']}"\n`);

    // The standalone config: one Discovery per device file, each with a secret property.
    const config = path.join(dir, 'edgebridge.yaml');
    writeStandaloneConfig(config, {
      discoveries: Object.entries(files).map(([key, file]) => ({
        namespace: NS,
        name: `sims-${key.toLowerCase()}`,
        spec: {
          handler: { name: 'simulated', details: { file } },
          properties: [
            {
              name: 'password',
              valueFrom: { secretKeyRef: { name: 'cam-login', key: 'password' } },
            },
          ],
        },
      })),
      secrets: [
        {
          namespace: NS,
          name: 'cam-login',
          stringData: { password: secret['Secret behind spec.properties'] },
        },
        { namespace: NS, name: 'unused', stringData: { token: secret['Secret nobody uses'] } },
        {
          namespace: NS,
          name: 'broker-users',
          stringData: { producer: secret['broker user password (Secret)'] },
        },
      ],
    });
    const goodConfig = `# admin token: ${secret['standalone config comment']}\n${readFileSync(config, 'utf8')}`;
    writeFileSync(config, goodConfig);

    // The node broker's config: a Secret-backed user and a file-backed one.
    const passwordFile = path.join(dir, 'filer.password');
    writeFileSync(passwordFile, `${secret['broker user password (file)']}\n`);
    const brokerDoc = stringify({
      users: [
        {
          name: 'producer',
          passwordFrom: { secretKeyRef: { namespace: NS, name: 'broker-users', key: 'producer' } },
          devices: [{ namespace: NS, publish: true }],
        },
        {
          name: 'filer',
          passwordFrom: { file: passwordFile },
          devices: [{ namespace: NS, publish: true }],
        },
      ],
    });
    const brokerConfig = path.join(dir, 'broker.yaml');
    writeFileSync(
      brokerConfig,
      `# root password: ${secret['broker config comment']}\n${brokerDoc}`,
    );

    // The uplink's config and its credential file.
    const uplinkPassword = path.join(dir, 'uplink.password');
    writeFileSync(uplinkPassword, secret['uplink password file']);
    const uplinkDoc = stringify({
      cluster: 'c1',
      // A user in the URL: logged URLs must lose it.
      cloud: {
        url: cloud.url.replace('mqtt://', `mqtt://${secret['uplink URL user']}@`),
        password: { file: uplinkPassword },
      },
      discoveries: true,
      topics: [{ filter: 'edgebridge/v1/+/+/data/#' }],
      spool: { dir: 'uplink-spool' },
    });
    const uplinkConfig = path.join(dir, 'uplink.yaml');
    writeFileSync(uplinkConfig, `# cloud token: ${secret['uplink config comment']}\n${uplinkDoc}`);

    // Broken broker and uplink configs stop an agent at start: one clear error each.
    const brokenBroker = path.join(dir, 'broken-broker.yaml');
    writeFileSync(
      brokenBroker,
      `users:\n  - name: x\n passwordFrom: ${secret['broken broker config line']}\n   y: [\n`,
    );
    const brokenUplink = path.join(dir, 'broken-uplink.yaml');
    writeFileSync(
      brokenUplink,
      `cluster: c1\ncloud:\n  password: {value: ${secret['broken uplink config line']}\n  url: [\n`,
    );
    const outputs: { what: string; text: string }[] = [];
    for (const [flag, file] of [
      ['--broker-config', brokenBroker],
      ['--uplink-config', brokenUplink],
    ] as const) {
      const r = await cli(
        'agent',
        '--node',
        'secrets-broken',
        '--standalone',
        '--config',
        config,
        '--state-dir',
        path.join(dir, 'state-broken'),
        '--http-port',
        '0',
        '--broker-port',
        '0',
        '--broker-host',
        '127.0.0.1',
        '--log-level',
        'debug',
        flag,
        file,
      );
      assert.notEqual(r.code, 0, `an agent with a broken ${flag} started`);
      assert.ok(r.output.includes(file), `${flag}: the error names the file: ${r.output}`);
      assert.match(r.output, /line \d+, column \d+/, `${flag}: the error gives line and column`);
      outputs.push({ what: `agent output with a broken ${flag}`, text: r.output });
    }

    const agent: AgentProcess = await startAgent({
      node: 'secrets',
      registryArgs: ['--standalone', '--config', config, '--state-dir', stateDir],
      extraArgs: ['--broker-config', brokerConfig, '--uplink-config', uplinkConfig],
    });
    cleanups.push(() => agent.stop());
    const url = agent.brokerUrl ?? '';
    const logged = (msg: string): Record<string, unknown>[] =>
      agent.logLines().filter((l) => l.msg === msg);
    const until = async (what: string, check: () => boolean | Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 60_000;
      while (!(await check())) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    // CONNECTs: refused ones with a password each, accepted ones that publish.
    assert.equal(
      await connectWith(url, 'producer', secret['refused CONNECT, wrong password']),
      false,
    );
    assert.equal(await connectWith(url, 'nobody', secret['refused CONNECT, unknown user']), false);
    assert.equal(
      await connectWith(url, 'serviceaccount', secret['refused CONNECT, service account']),
      false,
    );
    assert.equal(await connectWith(url, 'producer', secret['broker user password (Secret)']), true);
    assert.equal(await connectWith(url, 'filer', secret['broker user password (file)']), true);

    // Everything has been read: devices from the good files, one rejection per bad file.
    await until('the devices of the good files', async () => {
      const r = await cli('devices', '--standalone', '--state-dir', stateDir, '-o', 'yaml');
      return r.output.includes('dev-a') && r.output.includes('dev-b');
    });
    await until(
      'three device files rejected',
      () => logged('simulated devices file rejected').length >= 3,
    );
    await until(
      'the uplink at the cloud',
      () => logged('uplink: connected to the cloud broker').length > 0,
    );

    const metrics = await agent.get('/metrics');
    const devicesYaml = await cli('devices', '--standalone', '--state-dir', stateDir, '-o', 'yaml');
    const discoveriesYaml = await cli(
      'discoveries',
      '--standalone',
      '--state-dir',
      stateDir,
      '--config',
      config,
      '-o',
      'yaml',
      '-A',
    );
    // A broken edit of the standalone config: the last good one stays in force.
    writeFileSync(
      config,
      `${goodConfig}\n---\nkind: Secret\n token: ${secret['broken standalone config line']}\n  x: [\n`,
    );
    await until(
      'the broken config to be noticed',
      () => logged('keeping the last good config').length > 0,
    );

    const discoveriesBroken = await cli(
      'discoveries',
      '--standalone',
      '--state-dir',
      stateDir,
      '--config',
      config,
      '-A',
    );
    assert.notEqual(discoveriesBroken.code, 0, 'the CLI read a broken config');
    await agent.stop();

    const places = [
      ...outputs,
      { what: 'agent log', text: readFileSync(agent.logFile, 'utf8') },
      { what: '/metrics', text: metrics.body },
      { what: 'edgebridge devices -o yaml', text: devicesYaml.output },
      { what: 'edgebridge discoveries -o yaml', text: discoveriesYaml.output },
      { what: 'edgebridge discoveries on the broken config', text: discoveriesBroken.output },
      ...allFiles(stateDir).map((f) => ({ what: `state file ${f.file}`, text: f.text })),
    ];
    const hits = places
      .map((p) => ({ what: p.what, roles: leaked(p.text) }))
      .filter((h) => h.roles.length > 0);
    assert.deepEqual(hits, [], `secrets found (by role): ${JSON.stringify(hits)}`);
    // The checks looked at something: the rejections, refusals and devices are there.
    const log = readFileSync(agent.logFile, 'utf8');
    assert.match(log, /not valid YAML at line \d+, column \d+/);
    assert.ok(logged('client refused').length >= 1);
    assert.match(devicesYaml.output, /dev-a/);
    assert.equal(discoveriesYaml.code, 0, discoveriesYaml.output);
    assert.match(discoveriesYaml.output, /sims-goodyaml/);
    assert.match(metrics.body, /edgebridge_broker_auth_failures_total/);
  });
});
