import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { InvalidDetailsError, type DiscoveredDevice } from '../../discovery-handlers/handler.ts';
import { simulatedHandler } from '../../discovery-handlers/simulated/index.ts';

function write(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** Runs discover() and hands out its lists one at a time. */
function start(details: unknown) {
  const abort = new AbortController();
  const lines: string[] = [];
  const published: { id: string; payload: string }[] = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
  const lists = simulatedHandler.discover(simulatedHandler.validate(details), {
    signal: abort.signal,
    log,
    node: 'n1',
    secrets: {},
    intervalSeconds: 1,
    publish: {
      data: (id, payload) => published.push({ id, payload: payload.toString() }),
      state: () => undefined,
      event: () => undefined,
    },
  });
  const iterator = lists[Symbol.asyncIterator]();
  return {
    lines,
    published,
    next: async (): Promise<string[]> => {
      const r = await iterator.next();
      assert.equal(r.done, false);
      return r.value.map((d: DiscoveredDevice) => d.id).sort();
    },
    stop: async () => {
      abort.abort();
      await iterator.return?.();
    },
  };
}

describe('the simulated handler', () => {
  it('rejects bad details with a message a user can act on', () => {
    assert.throws(() => simulatedHandler.validate({ devices: 'x' }), InvalidDetailsError);
    assert.throws(
      () => simulatedHandler.validate({ devices: [{ id: '' }] }),
      /details\.devices\[0\]\.id: must be at least 1 characters/,
    );
    assert.throws(
      () => simulatedHandler.validate({ devices: [{ id: 'a' }, { id: 'a' }] }),
      /duplicate device id 'a'/,
    );
    assert.throws(
      () => simulatedHandler.validate({ devices: [{ id: 'a', properties: { lower: 'x' } }] }),
      /details\.devices\[0\]\.properties: key "lower" must be an ENV_STYLE name/,
    );
    assert.throws(
      () => simulatedHandler.validate({ file: 'relative.yaml' }),
      /details\.file: must be an absolute path/,
    );
    assert.throws(
      () => simulatedHandler.validate({ period: '1s' }),
      /details\.period: unknown field/,
    );
    assert.deepEqual(simulatedHandler.validate(undefined), { devices: [] });
  });

  it('publishes samples for the listed devices every publishIntervalMs', async () => {
    assert.throws(
      () => simulatedHandler.validate({ publishIntervalMs: 1 }),
      /details\.publishIntervalMs: must be at least 10/,
    );
    const run = start({ devices: [{ id: 'd1' }, { id: 'd2' }], publishIntervalMs: 20 });
    try {
      assert.deepEqual(await run.next(), ['d1', 'd2']);
      while (run.published.length < 4) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(
        run.published.slice(0, 2).map((p) => p.id),
        ['d1', 'd2'],
      );
      const sample = JSON.parse(run.published[0]?.payload ?? '') as Record<string, unknown>;
      assert.equal(sample.device, 'd1');
      assert.equal(sample.seq, 1);
      assert.equal(typeof sample.time, 'string');
    } finally {
      await run.stop();
    }
    const count = run.published.length;
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(run.published.length, count, 'published after the run stopped');
  });

  it('lists devices from details and from its file, again only when the file changes', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'eb-sim-')), 'devices.yaml');
    write(file, '- id: f1\n');
    const run = start({ devices: [{ id: 'd1' }], file });
    try {
      assert.deepEqual(await run.next(), ['d1', 'f1']);
      write(file, '- id: f1\n- id: f2\n');
      assert.deepEqual(await run.next(), ['d1', 'f1', 'f2']);
      write(file, '[]\n');
      assert.deepEqual(await run.next(), ['d1']);
    } finally {
      await run.stop();
    }
  });

  it('keeps the last good list when the file turns bad, and says so once', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'eb-sim-')), 'devices.yaml');
    write(file, '- id: good\n');
    const run = start({ file });
    try {
      assert.deepEqual(await run.next(), ['good']);
      // The handler reads while a consumer waits for the next list.
      const next = run.next();
      write(file, '- id: [unclosed\n');
      await new Promise((r) => setTimeout(r, 1500));
      write(file, '- { id: "has\\ttab" }\n');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(
        run.lines.filter((l) => l.includes('simulated devices file rejected')).length,
        2,
      );
      write(file, '- id: good\n- id: better\n');
      assert.deepEqual(await next, ['better', 'good']);
    } finally {
      await run.stop();
    }
  });
});
