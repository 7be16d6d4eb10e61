// Attack: Discoveries whose device file is not a file the agent should read —
// a character device, a symlink to one, FIFOs without a writer, a huge sparse
// file, a directory. Each must cost one condition and one log line on its own
// Discovery, while the rest of the agent (another Discovery, the node broker)
// goes on and memory stays bounded.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { connectAsync } from 'mqtt';
import { startAgent, type AgentProcess } from '../harness/agent.ts';
import { eventually, writeDevicesFile } from '../harness/devices.ts';
import { writeStandaloneConfig } from '../harness/standalone-config.ts';
import { scratchDir } from '../harness/workdir.ts';
import type { Condition } from '../../src/api/types.ts';

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const NS = 'default';
/** Far above what the agent needs (about 100 MB), far below reading a 1 GiB file or /dev/zero. */
const PEAK_MEMORY_LIMIT_KB = 400 * 1024;

async function cli<T>(stateDir: string, ...args: string[]): Promise<T> {
  const { stdout } = await run(process.execPath, [
    CLI,
    ...args,
    '--standalone',
    '--state-dir',
    stateDir,
    '-o',
    'json',
  ]);
  return JSON.parse(stdout) as T;
}

function peakMemoryKb(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

describe('a Discovery whose device file is hostile', () => {
  let agent: AgentProcess | undefined;
  after(async () => {
    await agent?.stop();
  });

  it('costs that Discovery one condition and one log line; other Discoveries register, the broker accepts CONNECT, memory stays bounded', async () => {
    const dir = scratchDir('hostile-files');
    const stateDir = path.join(dir, 'state');
    const hostile: Record<string, string> = {
      'dev-zero': '/dev/zero',
      'link-to-zero': path.join(dir, 'zero-link'),
      huge: path.join(dir, 'huge.yaml'),
      directory: path.join(dir, 'a-directory'),
    };
    symlinkSync('/dev/zero', hostile['link-to-zero'] ?? '');
    writeFileSync(hostile.huge ?? '', '');
    truncateSync(hostile.huge ?? '', 1024 ** 3);
    mkdirSync(hostile.directory ?? '');
    for (let i = 1; i <= 5; i++) {
      const fifo = path.join(dir, `fifo-${i}`);
      execFileSync('mkfifo', [fifo]);
      hostile[`fifo-${i}`] = fifo;
    }
    const goodFile = path.join(dir, 'good.yaml');
    writeDevicesFile(goodFile, [{ id: 'good-1' }, { id: 'good-2' }]);
    const passwordFile = path.join(dir, 'probe-password');
    writeFileSync(passwordFile, 'probe-secret');
    // A user whose password file is a FIFO: refused, and the broker goes on.
    const fifoPassword = path.join(dir, 'fifo-password');
    execFileSync('mkfifo', [fifoPassword]);
    const brokerConfig = path.join(dir, 'broker.yaml');
    writeFileSync(
      brokerConfig,
      [
        'users:',
        `  - { name: probe, passwordFrom: { file: ${JSON.stringify(passwordFile)} }, devices: [{ namespace: ${NS} }] }`,
        `  - { name: piped, passwordFrom: { file: ${JSON.stringify(fifoPassword)} }, devices: [{ namespace: ${NS} }] }`,
        '',
      ].join('\n'),
    );
    const config = path.join(dir, 'edgebridge.yaml');
    writeStandaloneConfig(config, {
      discoveries: [
        ...Object.entries(hostile).map(([name, file]) => ({
          namespace: NS,
          name,
          spec: { handler: { name: 'simulated' as const, details: { file } }, intervalSeconds: 1 },
        })),
        {
          namespace: NS,
          name: 'good',
          spec: { handler: { name: 'simulated', details: { file: goodFile } }, intervalSeconds: 1 },
        },
      ],
    });
    agent = await startAgent({
      node: 'hostile-files',
      registryArgs: ['--standalone', '--config', config, '--state-dir', stateDir],
      extraArgs: ['--broker-config', brokerConfig],
    });

    await eventually('the good Discovery to register its devices', async () => {
      const list = await cli<{ items: { spec: { id: string } }[] }>(
        stateDir,
        'devices',
        '-l',
        'edgebridge.io/discovery=good',
      );
      return list.items.length === 2 ? true : undefined;
    });
    const problems = await eventually(
      'a Discovering=False condition on every hostile Discovery',
      async () => {
        const list = await cli<{
          items: { metadata: { name: string }; status?: { conditions?: Condition[] } }[];
        }>(stateDir, 'discoveries');
        const found = new Map<string, string>();
        for (const d of list.items) {
          const c = d.status?.conditions?.find((x) => x.type === 'Discovering');
          if (c?.status === 'False') found.set(d.metadata.name, c.message ?? '');
        }
        return Object.keys(hostile).every((n) => found.has(n)) ? found : undefined;
      },
    );
    assert.match(problems.get('dev-zero') ?? '', /is a character device, not a regular file/);
    assert.match(problems.get('link-to-zero') ?? '', /is a character device, not a regular file/);
    assert.match(problems.get('fifo-3') ?? '', /is a FIFO, not a regular file/);
    assert.match(problems.get('huge') ?? '', /is larger than \d+ bytes/);
    assert.match(problems.get('directory') ?? '', /is a directory, not a regular file/);

    // The broker answers: it refuses the user whose password file is a FIFO...
    const refused = await connectAsync(agent.brokerUrl ?? '', {
      username: 'piped',
      password: 'anything',
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 20_000,
    }).then(
      async (c) => {
        await c.endAsync(true);
        return 'accepted';
      },
      (err: unknown) => String((err as { code?: unknown }).code),
    );
    // 3: the broker cannot check the password now (unavailable, not "wrong").
    assert.equal(refused, '3', 'refused with a CONNACK code');
    // ...and accepts a client whose password file it must read now.
    const client = await connectAsync(agent.brokerUrl ?? '', {
      username: 'probe',
      password: 'probe-secret',
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 20_000,
    });
    await client.endAsync();

    // Several more polls of every file: still one line per Discovery.
    await sleep(4000);
    const rejected = agent.logLines().filter((l) => l.msg === 'simulated devices file rejected');
    for (const name of Object.keys(hostile)) {
      assert.equal(
        rejected.filter((l) => l.discovery === name).length,
        1,
        `one log line for ${name}`,
      );
    }
    assert.ok(
      peakMemoryKb(agent.process.pid ?? 0) < PEAK_MEMORY_LIMIT_KB,
      'the agent never held a large file in memory',
    );
    assert.equal((await agent.get('/healthz')).status, 200);
  });
});
