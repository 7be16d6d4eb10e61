// One standalone agent (embedded registry, state under a directory) with a
// simulated Discovery of N devices, for each N in SIZES (default
// "200,1000,5000"): time from the agent's start until every Device file is in
// the state directory, the files per second written at the end of the run
// (flat when per-write cost does not grow with N), and the agent's RSS.
// STATE_PARENT puts the state directories elsewhere (e.g. on a disk, not
// tmpfs); CPU_PROF=1 writes a V8 CPU profile per run beside the agent's log;
// BUILT=1 runs the built agent (npm run build first) as the image does.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent } from '../test/harness/agent.ts';
import { writeDevicesFile } from '../test/harness/devices.ts';
import { AGENT_NODE_ARGS } from '../test/harness/node-flags.ts';
import { scratchDir } from '../test/harness/workdir.ts';

const SIZES = (process.env.SIZES ?? '200,1000,5000').split(',').map(Number);
const TIMEOUT_S = Number(process.env.TIMEOUT_S ?? '300');
const POLL_MS = 100;
const BUILT = process.env.BUILT === '1';
const BUILT_CLI = path.resolve(import.meta.dirname, '../dist/src/cli/main.js');

function deviceFiles(dir: string): number {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('.')).length;
  } catch {
    return 0;
  }
}

function mb(status: string, field: string): string {
  return (Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024).toFixed(1);
}

const results: [string, string][] = [];
for (const n of SIZES) {
  const dir = scratchDir(`bench-embedded-${n}`);
  const stateDir = path.join(process.env.STATE_PARENT ?? dir, `state-${n}-${Date.now()}`);
  const devicesFile = path.join(dir, 'devices.json');
  writeDevicesFile(
    devicesFile,
    Array.from({ length: n }, (_, i) => ({
      id: `sensor-${i}`,
      properties: { SIM_INDEX: String(i) },
    })),
  );
  const config = path.join(dir, 'edgebridge.yaml');
  writeFileSync(
    config,
    [
      'apiVersion: edgebridge.io/v1alpha1',
      'kind: Discovery',
      'metadata: { name: sensors, namespace: default }',
      'spec:',
      `  handler: { name: simulated, details: { file: ${JSON.stringify(devicesFile)} } }`,
      '  intervalSeconds: 5',
      '',
    ].join('\n'),
  );
  const started = performance.now();
  const agent = await startAgent({
    node: `bench-${n}`,
    registryArgs: ['--standalone', '--config', config, '--state-dir', stateDir],
    extraArgs: ['--log-level', 'info', '--no-broker'],
    nodeArgs: [
      ...(BUILT ? AGENT_NODE_ARGS : []),
      ...(process.env.CPU_PROF === '1' ? ['--cpu-prof', '--cpu-prof-dir', dir] : []),
    ],
    ...(BUILT ? { cli: BUILT_CLI } : {}),
    waitReady: false,
  });
  try {
    const devicesDir = path.join(stateDir, 'registry', 'devices', 'default');
    const marks: { t: number; files: number }[] = [];
    let files = 0;
    for (;;) {
      files = deviceFiles(devicesDir);
      marks.push({ t: performance.now(), files });
      if (files >= n || performance.now() - started > TIMEOUT_S * 1000) break;
      await sleep(POLL_MS);
    }
    if (files < n) {
      results.push([`${n} devices`, `only ${files} registered after ${TIMEOUT_S} s`]);
      continue;
    }
    const total = (performance.now() - started) / 1000;
    const first = marks.find((m) => m.files > 0)?.t ?? started;
    const writing = ((performance.now() - first) / 1000).toFixed(1);
    // The rate over the last fifth of the devices: per-write cost late in the run.
    const from = marks.find((m) => m.files >= n * 0.8) ?? marks[0];
    const last = marks[marks.length - 1];
    const rate =
      from !== undefined && last !== undefined && last.t > from.t
        ? ((last.files - from.files) / ((last.t - from.t) / 1000)).toFixed(0)
        : 'n/a';
    await sleep(2000);
    const status = readFileSync(`/proc/${String(agent.process.pid)}/status`, 'utf8');
    results.push([
      `${n} devices`,
      `${total.toFixed(1)} s to register all (${writing} s from the first; last fifth: ${rate} devices/s); RSS ${mb(status, 'VmRSS')} MB, peak ${mb(status, 'VmHWM')} MB`,
    ]);
    console.log(results[results.length - 1]?.join(': ') ?? '');
  } finally {
    await agent.stop();
  }
}
console.log(
  `\nregistry-embedded (standalone agent ${BUILT ? 'built, image flags' : 'from the sources'}, simulated discovery):`,
);
for (const [k, v] of results) console.log(`  ${k}: ${v}`);
