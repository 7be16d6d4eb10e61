import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LogLimiter } from '../../src/util/log-limiter.ts';

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('LogLimiter', () => {
  it('logs the first event of a kind and peer, then none until the interval has passed', () => {
    let now = 0;
    const limiter = new LogLimiter({ intervalMs: 1000, now: () => now });
    assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: true, suppressed: 0 });
    for (let i = 0; i < 5; i++)
      assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: false });
    now = 999;
    assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: false });
    now = 1000;
    assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: true, suppressed: 6 });
    now = 2500;
    assert.deepEqual(limiter.take('refused', '10.0.0.1'), { log: true, suppressed: 0 });
  });

  it('counts kinds and peers apart', () => {
    const limiter = new LogLimiter({ intervalMs: 1000, now: () => 0 });
    assert.equal(limiter.take('refused', 'a').log, true);
    assert.equal(limiter.take('refused', 'b').log, true);
    assert.equal(limiter.take('timeout', 'a').log, true);
    assert.equal(limiter.take('refused', 'a').log, false);
  });

  it('a kind and peer that only look alike when joined are still apart', () => {
    const limiter = new LogLimiter({ intervalMs: 1000, now: () => 0 });
    assert.equal(limiter.take('a b', 'c').log, true);
    assert.equal(limiter.take('a', 'b c').log, true);
  });

  it('remembers at most maxKeys kinds and peers, forgetting the least recently logged', () => {
    let now = 0;
    const limiter = new LogLimiter({ intervalMs: 1000, maxKeys: 3, now: () => now });
    for (let i = 0; i < 10_000; i++) limiter.take('refused', `peer-${i}`);
    // Only the last three are remembered: they stay quiet, an older one logs again.
    now = 1;
    assert.equal(limiter.take('refused', 'peer-9999').log, false);
    assert.equal(limiter.take('refused', 'peer-9997').log, false);
    assert.deepEqual(limiter.take('refused', 'peer-0'), { log: true, suppressed: 0 });
  });

  it('with a cap per kind, ever-new peer names cannot flood; the next line counts them', () => {
    const c = clock();
    const l = new LogLimiter({ intervalMs: 1000, perKind: 3, now: c.now });
    let passed = 0;
    for (let i = 0; i < 10_000; i++) if (l.take('refused', `client-${i}`).log) passed++;
    assert.equal(passed, 3);
    c.advance(1000);
    assert.deepEqual(l.take('refused', 'client-new'), { log: true, suppressed: 9997 });
  });

  it('the default interval is a minute', () => {
    const c = clock();
    const l = new LogLimiter({ now: c.now });
    assert.equal(l.take('spool-full').log, true);
    c.advance(59_999);
    assert.equal(l.take('spool-full').log, false);
    c.advance(1);
    assert.deepEqual(l.take('spool-full'), { log: true, suppressed: 1 });
  });

  it('log() writes the line with the count, or nothing', () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const log = pino({ level: 'info' }, sink);
    const c = clock();
    const l = new LogLimiter({ intervalMs: 1000, now: c.now });
    for (let i = 0; i < 50; i++) l.log(log, 'warn', 'spool-full', '', { n: i }, 'spool full');
    c.advance(1000);
    l.log(log, 'warn', 'spool-full', '', { n: 50 }, 'spool full');
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        assert.equal(lines.length, 2);
        assert.equal(lines[0]?.n, 0);
        assert.equal(lines[0]?.suppressed, undefined);
        assert.equal(lines[1]?.suppressed, 49);
        assert.equal(lines[1]?.level, 40);
        resolve();
      }),
    );
  });
});
