import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Shutdown } from '../../src/agent/shutdown.ts';

function setup(timeoutMs: number) {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
  );
  let exited: (code: number) => void = () => undefined;
  const exit = new Promise<number>((r) => (exited = r));
  const shutdown = new Shutdown({ timeoutMs, log, exit: (code) => exited(code) });
  return { lines, exit, shutdown };
}

describe('Shutdown', () => {
  it('forces the exit at the deadline, logging "agent stopped" with the steps it abandoned', async () => {
    const { lines, exit, shutdown } = setup(50);
    void shutdown.step('discovery runs', new Promise(() => undefined));
    shutdown.begin('received SIGTERM', 'SIGTERM');
    assert.equal(shutdown.signal.aborted, true);
    assert.equal(await exit, 1);
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['stopping', 'agent stopped'],
    );
    assert.deepEqual(lines[1]?.abandoned, ['discovery runs']);
  });

  it('exits at once on a second signal', async () => {
    const { lines, exit, shutdown } = setup(3_600_000);
    shutdown.begin('received SIGTERM', 'SIGTERM');
    shutdown.begin('received SIGTERM', 'SIGTERM');
    assert.equal(await exit, 1);
    assert.match(String(lines.at(-1)?.forced), /second SIGTERM/);
  });

  it('logs "agent stopped" once when every step finished, and does not force anything', async () => {
    const { lines, shutdown } = setup(3_600_000);
    shutdown.begin('the agent ended');
    await shutdown.step('registry', Promise.resolve());
    shutdown.finished();
    shutdown.finished();
    shutdown.begin('again');
    assert.deepEqual(
      lines.map((l) => [l.msg, l.forced]),
      [
        ['stopping', undefined],
        ['agent stopped', undefined],
      ],
    );
  });
});
