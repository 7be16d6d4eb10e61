// Attack: the agent's own configuration files named as a FIFO, a character
// device or a symlink to one. Each is one clear configuration error naming the
// file; the agent neither hangs on the FIFO nor reads /dev/zero into memory.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startAgent } from '../harness/agent.ts';
import { scratchDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

/** Runs `edgebridge agent` with `args`; it must exit on its own (the timeout kills a hung one). */
async function agentFails(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [CLI, 'agent', '--http-port', '0', ...args], {
      timeout: 60_000,
    });
  } catch (err) {
    const e = err as { code?: unknown; killed?: boolean; stderr?: string };
    assert.equal(e.killed, false, 'the agent exited on its own');
    return { code: Number(e.code), stderr: e.stderr ?? '' };
  }
  return assert.fail('the agent started');
}

describe('a configuration file that is not a regular file', () => {
  const dir = scratchDir('hostile-config');
  const fifo = path.join(dir, 'fifo.yaml');
  execFileSync('mkfifo', [fifo]);
  const link = path.join(dir, 'zero.yaml');
  symlinkSync('/dev/zero', link);
  const state = ['--state-dir', path.join(dir, 'state'), '--http-host', '127.0.0.1'];
  const noBroker = [...state, '--no-broker'];
  const cases: [string, string[], RegExp][] = [
    [
      '--uplink-config, a FIFO',
      ['--standalone', ...noBroker, '--uplink-config', fifo],
      /is a FIFO/,
    ],
    [
      '--uplink-config, a symlink to /dev/zero',
      ['--standalone', ...noBroker, '--uplink-config', link],
      /is a character device/,
    ],
  ];
  for (const [name, args, message] of cases) {
    it(`${name}: the agent does not start, with one error naming the file`, async () => {
      const { code, stderr } = await agentFails(args);
      assert.ok(code === 1 || code === 2, `a configuration error (exit ${code})`);
      assert.match(stderr, message);
    });
  }

  // The standalone config is re-read while the agent runs: a bad one is logged once and the agent serves on.
  for (const [name, file, message] of [
    ['a FIFO', fifo, /is a FIFO, not a regular file/],
    ['/dev/zero', '/dev/zero', /is a character device/],
  ] as const) {
    it(`--config, ${name}: one error naming the file, and the agent serves on`, async (t) => {
      const agent = await startAgent({
        node: 'hostile-config',
        registryArgs: ['--standalone', '--config', file, '--state-dir', path.join(dir, name)],
        waitReady: false,
      });
      t.after(() => agent.stop());
      const errors = () => agent.logLines().filter((l) => l.msg === 'cannot use the config file');
      await agent.process.waitUntil('the config error', () =>
        errors().length > 0 ? true : undefined,
      );
      assert.match(JSON.stringify(errors()[0]?.err), message);
      await sleep(3000);
      assert.equal(errors().length, 1, 'one line, not one per retry');
      assert.equal((await agent.get('/healthz')).status, 200);
    });
  }

  it('--broker-config, a FIFO: one error naming the file', async () => {
    const { stderr } = await agentFails([
      '--standalone',
      ...state,
      '--broker-port',
      '0',
      '--broker-host',
      '127.0.0.1',
      '--broker-config',
      fifo,
    ]);
    assert.match(stderr, /is a FIFO, not a regular file/);
  });
});
