// Attack: an agent whose libuv threadpool is starved (every thread held by a
// blocking open() of a FIFO, loaded with `node --import`; see
// fixtures/wedge-threadpool.ts). /healthz must say so, and SIGTERM must still
// end the process within --shutdown-timeout, logging "agent stopped".
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { eventually, writeDevicesFile } from '../harness/devices.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { scratchDir } from '../harness/workdir.ts';

const WEDGE = path.resolve(import.meta.dirname, 'fixtures/wedge-threadpool.ts');
const THREADS = 4;

/** A standalone agent with one simulated Discovery, ready to be wedged by SIGUSR2. */
async function wedgeableAgent(name: string, shutdownTimeout: number): Promise<AgentProcess> {
  const dir = scratchDir(name);
  const fifos = path.join(dir, 'fifos');
  mkdirSync(fifos);
  for (let i = 0; i < THREADS; i++) execFileSync('mkfifo', [path.join(fifos, `fifo-${i}`)]);
  const devices = path.join(dir, 'devices.yaml');
  writeDevicesFile(devices, [{ id: 'd1' }]);
  const config = path.join(dir, 'edgebridge.yaml');
  writeStandaloneConfig(config, {
    discoveries: [
      {
        namespace: 'default',
        name: 'lab',
        spec: { handler: { name: 'simulated', details: { file: devices } }, intervalSeconds: 1 },
      },
    ],
  });
  return startAgent({
    node: name,
    registryArgs: ['--standalone', '--config', config, '--state-dir', path.join(dir, 'state')],
    extraArgs: ['--shutdown-timeout', String(shutdownTimeout)],
    nodeArgs: ['--import', WEDGE],
    env: { EDGEBRIDGE_TEST_WEDGE_DIR: fifos, UV_THREADPOOL_SIZE: String(THREADS) },
  });
}

/** Waits for the process to end on its own; the harness would SIGKILL it only after `graceMs`. */
async function exitsWithin(agent: AgentProcess, graceMs: number): Promise<string> {
  const timer = setTimeout(() => agent.process.killNow(), graceMs);
  await agent.process.waitForExit();
  clearTimeout(timer);
  return agent.process.exitStatus ?? '';
}

describe('an agent whose threadpool is starved', () => {
  const agents: AgentProcess[] = [];
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
  });

  it('fails /healthz naming the threadpool, and stops on SIGTERM within --shutdown-timeout, logging "agent stopped"', async () => {
    const agent = await wedgeableAgent('wedged-term', 3);
    agents.push(agent);
    assert.equal((await agent.get('/healthz')).status, 200);
    agent.process.signal('SIGUSR2');
    const health = await eventually('/healthz to fail', async () => {
      const r = await agent.get('/healthz');
      return r.status === 503 ? r.body : undefined;
    });
    assert.match(health, /threadpool starved/);
    assert.equal((await agent.get('/readyz')).status, 200, '/readyz as before');

    agent.process.signal('SIGTERM');
    // Far beyond the 3 s deadline, far below for ever. A forced stop ends by SIGTERM's
    // default action (process.exit() would wait for the stuck threads); the harness's SIGKILL would read otherwise.
    assert.equal(await exitsWithin(agent, 60_000), 'signal SIGTERM');
    const lines = agent.logLines();
    assert.ok(lines.some((l) => l.msg === 'stopping'));
    const stopped = lines.find((l) => l.msg === 'agent stopped');
    assert.ok(stopped !== undefined, '"agent stopped" is logged');
    assert.match(String(stopped.forced), /deadline/);
    assert.ok(Array.isArray(stopped.abandoned), 'it says what it abandoned');
  });

  it('exits at once on a second SIGTERM', async () => {
    const agent = await wedgeableAgent('wedged-twice', 3600);
    agents.push(agent);
    agent.process.signal('SIGUSR2');
    await eventually('/healthz to fail', async () =>
      (await agent.get('/healthz')).status === 503 ? true : undefined,
    );
    agent.process.signal('SIGTERM');
    await agent.process.waitUntil('"stopping" to be logged', () =>
      agent.logLines().some((l) => l.msg === 'stopping') ? true : undefined,
    );
    agent.process.signal('SIGTERM');
    assert.equal(await exitsWithin(agent, 60_000), 'signal SIGTERM');
    const stopped = agent.logLines().find((l) => l.msg === 'agent stopped');
    assert.match(String(stopped?.forced), /second SIGTERM/);
  });
});
