import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { eventually, writeDevicesFile } from '../harness/devices.ts';
import { scratchDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

interface DeviceList {
  kind: string;
  items: {
    metadata: { name: string; namespace: string };
    spec: { id: string };
    status?: { nodes?: { name: string }[] };
  }[];
}

async function devices(stateDir: string, ...args: string[]): Promise<DeviceList> {
  const { stdout } = await run(process.execPath, [
    CLI,
    'devices',
    '--standalone',
    '--state-dir',
    stateDir,
    '-o',
    'json',
    ...args,
  ]);
  return JSON.parse(stdout) as DeviceList;
}

describe('edgebridge agent --standalone (embedded registry, no cluster)', () => {
  const agents: AgentProcess[] = [];
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
  });

  it('registers devices from a Discovery in a YAML file, serves them to `edgebridge devices`, and keeps them across a restart', async () => {
    const dir = scratchDir('standalone');
    const stateDir = path.join(dir, 'state');
    const devicesFile = path.join(dir, 'devices.yaml');
    const config = path.join(dir, 'edgebridge.yaml');
    writeDevicesFile(devicesFile, [
      { id: 'sensor-1', properties: { SIM_TOPIC: 'temp' } },
      { id: 'sensor-2' },
    ]);
    writeFileSync(
      config,
      [
        'apiVersion: edgebridge.io/v1alpha1',
        'kind: Discovery',
        'metadata: { name: lab, namespace: default }',
        'spec:',
        '  handler: { name: simulated, details: { file: ' + JSON.stringify(devicesFile) + ' } }',
        '  intervalSeconds: 1',
        '  gracePeriodSeconds: 1',
        '',
      ].join('\n'),
    );
    const registryArgs = ['--standalone', '--config', config, '--state-dir', stateDir];
    const first = await startAgent({ node: 'edge-1', registryArgs });
    agents.push(first);
    const listed = await eventually('two devices in the embedded registry', async () => {
      const list = await devices(stateDir);
      return list.items.length === 2 ? list : undefined;
    });
    assert.equal(listed.kind, 'DeviceList');
    assert.deepEqual(listed.items.map((d) => d.spec.id).sort(), ['sensor-1', 'sensor-2']);
    assert.deepEqual(listed.items[0]?.status?.nodes, [{ name: 'edge-1' }]);
    assert.ok(listed.items.every((d) => /^lab-[0-9a-f]{10}$/.test(d.metadata.name)));

    // The CLI beside the agent needs only the state directory to say what the agent runs.
    const { stdout: discoveries } = await run(process.execPath, [
      CLI,
      'discoveries',
      '--standalone',
      '--state-dir',
      stateDir,
      '-o',
      'wide',
    ]);
    assert.match(discoveries, /^lab\s+simulated\s+\S+\s+\S+\s+True$/m);

    // A restart changes nothing that is still true.
    const names = listed.items.map((d) => d.metadata.name).sort();
    await first.stop();
    const second = await startAgent({ node: 'edge-1', registryArgs });
    agents.push(second);
    assert.deepEqual((await devices(stateDir)).items.map((d) => d.metadata.name).sort(), names);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await second.metric('edgebridge_registry_requests_total', { verb: 'apply' }), 0);

    writeDevicesFile(devicesFile, [{ id: 'sensor-2' }]);
    const left = await eventually('sensor-1 to go', async () => {
      const list = await devices(stateDir, '-l', 'edgebridge.io/discovery=lab');
      return list.items.length === 1 ? list : undefined;
    });
    assert.equal(left.items[0]?.spec.id, 'sensor-2');
    const { stdout } = await run(process.execPath, [
      CLI,
      'devices',
      '--standalone',
      '--state-dir',
      stateDir,
      '--node',
      'edge-1',
    ]);
    assert.match(stdout, /^NAME\s+HANDLER\s+SHARED\s+NODES\s+AGE/m);
    assert.match(stdout, /lab-[0-9a-f]{10}\s+simulated\s+true\s+edge-1/);
  });

  it('registers a burst of 1,000 devices while another process reads the state directory: every read whole, the count true at the end', async () => {
    const n = 1000;
    const dir = scratchDir('standalone-burst');
    const stateDir = path.join(dir, 'state');
    const devicesFile = path.join(dir, 'devices.json');
    const config = path.join(dir, 'edgebridge.yaml');
    const ids = Array.from({ length: n }, (_, i) => `burst-${i}`);
    writeDevicesFile(
      devicesFile,
      ids.map((id) => ({ id })),
    );
    writeFileSync(
      config,
      [
        'apiVersion: edgebridge.io/v1alpha1',
        'kind: Discovery',
        'metadata: { name: burst, namespace: default }',
        'spec:',
        '  handler: { name: simulated, details: { file: ' + JSON.stringify(devicesFile) + ' } }',
        '',
      ].join('\n'),
    );
    const agent = await startAgent({
      node: 'edge-2',
      registryArgs: ['--standalone', '--config', config, '--state-dir', stateDir],
      extraArgs: ['--log-level', 'info', '--no-broker'],
    });
    agents.push(agent);
    // The CLI, another process, lists while the agent writes: each list is whole
    // Devices, never fewer than before. Problems are collected (eventually retries on a throw).
    const known = new Set(ids);
    const problems: string[] = [];
    let seen = 0;
    let reads = 0;
    await eventually(`${n} devices listed by the CLI`, async () => {
      const { stdout } = await run(
        process.execPath,
        [CLI, 'devices', '--standalone', '--state-dir', stateDir, '-o', 'json'],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      const list = JSON.parse(stdout) as DeviceList;
      reads++;
      if (list.items.length < seen) problems.push(`${list.items.length} devices after ${seen}`);
      seen = list.items.length;
      for (const d of list.items) {
        if (!known.has(d.spec.id)) problems.push(`unknown id ${d.spec.id}`);
        if (d.status?.nodes?.[0]?.name !== 'edge-2') problems.push(`${d.metadata.name}: no node`);
      }
      return list.items.length === n ? true : undefined;
    });
    assert.deepEqual(problems, []);
    assert.ok(reads > 0);
    // status.devices, counted after bursts of writes, ends equal to the number of Devices.
    await eventually('status.devices to say 1000', async () => {
      const { stdout } = await run(process.execPath, [
        CLI,
        'discoveries',
        '--standalone',
        '--state-dir',
        stateDir,
        '-o',
        'json',
      ]);
      const list = JSON.parse(stdout) as { items: { status?: { devices?: number } }[] };
      return list.items[0]?.status?.devices === n ? true : undefined;
    });
  });
});
