import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LogLimiter } from '../../src/util/log-limiter.ts';

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('log limiter', () => {
  it('lets one line per kind and peer through per interval, and the next says how many were dropped', () => {
    const c = clock();
    const l = new LogLimiter({ intervalMs: 1000, now: c.now });
    assert.deepEqual(l.take('refused', 'a'), {});
    for (let i = 0; i < 5; i++) assert.equal(l.take('refused', 'a'), undefined);
    c.advance(999);
    assert.equal(l.take('refused', 'a'), undefined);
    c.advance(1);
    assert.deepEqual(l.take('refused', 'a'), { suppressed: 6 });
    c.advance(1000);
    assert.deepEqual(l.take('refused', 'a'), {}, 'the count starts again after each line');
  });

  it('keeps kinds and peers apart', () => {
    const l = new LogLimiter({ intervalMs: 1000, now: clock().now });
    assert.deepEqual(l.take('refused', 'a'), {});
    assert.deepEqual(l.take('refused', 'b'), {});
    assert.deepEqual(l.take('bad-packet', 'a'), {});
    assert.equal(l.take('refused', 'a'), undefined);
    assert.equal(l.take('bad-packet', 'a'), undefined);
  });

  it('caps the lines of one kind over all peers, so that ever-new peer names cannot flood', () => {
    const c = clock();
    const l = new LogLimiter({ intervalMs: 1000, perKind: 3, now: c.now });
    let passed = 0;
    for (let i = 0; i < 10_000; i++) if (l.take('refused', `client-${i}`) !== undefined) passed++;
    assert.equal(passed, 3);
    c.advance(1000);
    assert.deepEqual(l.take('refused', 'client-new'), { suppressed: 9997 });
  });

  it('remembers a bounded number of peers', () => {
    const c = clock();
    const l = new LogLimiter({ intervalMs: 1000, perKind: Infinity, maxKeys: 100, now: c.now });
    for (let i = 0; i < 100_000; i++) l.take('refused', `client-${i}`);
    // The first peer was forgotten: its next line passes as a first one would.
    assert.deepEqual(l.take('refused', 'client-0'), {});
    // A recent one is still remembered.
    assert.equal(l.take('refused', 'client-99999'), undefined);
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
        assert.equal(lines[1]?.suppressed, 49);
        assert.equal(lines[1]?.level, 40);
        resolve();
      }),
    );
  });
});
