// A careless edit of a standalone agent's config file: a Discovery made
// schema-invalid must not take its Devices with it at once. It stays listed
// with SpecValid=False, no handler runs for it, its Devices go only after the
// grace period, and status.devices counts them all along.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Discovery } from '../../src/api/types.ts';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { eventually, writeDevicesFile } from '../harness/devices.ts';
import { scratchDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const GRACE_SECONDS = 20;

async function list<T>(command: string, stateDir: string): Promise<T[]> {
  const { stdout } = await run(process.execPath, [
    CLI,
    command,
    '--standalone',
    '--state-dir',
    stateDir,
    '-o',
    'json',
  ]);
  return (JSON.parse(stdout) as { items: T[] }).items;
}

function config(file: string, devicesFile: string, extra: readonly string[]): void {
  writeFileSync(
    file,
    [
      'apiVersion: edgebridge.io/v1alpha1',
      'kind: Discovery',
      'metadata: { name: lab, namespace: default }',
      'spec:',
      `  handler: { name: simulated, details: { file: ${JSON.stringify(devicesFile)} } }`,
      '  intervalSeconds: 1',
      `  gracePeriodSeconds: ${GRACE_SECONDS}`,
      ...extra,
      '',
    ].join('\n'),
  );
}

describe('a Discovery made schema-invalid by an edit (standalone)', () => {
  const agents: AgentProcess[] = [];
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
  });

  for (const [what, bad] of [
    ['a wrong type', ['  capacity: many']],
    ['an unknown field', ['  gracePeriodSecond: 5']],
    ['a broken CEL rule', ['  properties: [{ name: A }]']],
  ] as const) {
    it(`(${what}) keeps its devices for the grace period, runs no handler, then removes them; status.devices follows`, async () => {
      const dir = scratchDir('invalid-edit');
      const stateDir = path.join(dir, 'state');
      const devicesFile = path.join(dir, 'devices.yaml');
      const file = path.join(dir, 'edgebridge.yaml');
      writeDevicesFile(devicesFile, [{ id: 'sensor-1' }, { id: 'sensor-2' }]);
      config(file, devicesFile, []);
      const agent = await startAgent({
        node: 'edge-1',
        registryArgs: ['--standalone', '--config', file, '--state-dir', stateDir],
      });
      agents.push(agent);
      const lab = async (): Promise<Discovery | undefined> =>
        (await list<Discovery>('discoveries', stateDir)).find((d) => d.metadata.name === 'lab');

      await eventually('two devices, counted in status.devices', async () =>
        (await list('devices', stateDir)).length === 2 && (await lab())?.status?.devices === 2
          ? true
          : undefined,
      );

      config(file, devicesFile, bad);
      const invalid = await eventually('the Discovery marked SpecValid=False', async () => {
        const d = await lab();
        return d?.status?.conditions?.find((c) => c.type === 'SpecValid' && c.status === 'False');
      });
      assert.equal(invalid.reason, 'InvalidSpec');
      // Well inside the grace period: the devices are all still there.
      assert.equal((await list('devices', stateDir)).length, 2);
      assert.equal((await lab())?.status?.devices, 2);
      // A handler still running would list this third device within a second or so.
      writeDevicesFile(devicesFile, [{ id: 'sensor-1' }, { id: 'sensor-2' }, { id: 'sensor-3' }]);

      await eventually('the devices to go after the grace period', async () =>
        (await list('devices', stateDir)).length === 0 && (await lab())?.status?.devices === 0
          ? true
          : undefined,
      );
      const registered = agent
        .logLines()
        .filter((l) => l.msg === 'device registered')
        .map((l) => l.id);
      assert.ok(!registered.includes('sensor-3'), 'a handler ran for the invalid Discovery');

      // Fixed: it runs again, and the condition goes.
      config(file, devicesFile, []);
      await eventually('three devices after the fix', async () =>
        (await list('devices', stateDir)).length === 3 && (await lab())?.status?.devices === 3
          ? true
          : undefined,
      );
      assert.equal(
        (await lab())?.status?.conditions?.find((c) => c.type === 'SpecValid'),
        undefined,
      );
      await agent.stop();
    });
  }
});
