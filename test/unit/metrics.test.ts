import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentMetrics } from '../../src/metrics.ts';

/** The value of one sample in Prometheus text. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line !== undefined, `no sample ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('the agent’s process metrics', () => {
  it('report event-loop delay since the last scrape: a blocked loop shows, and is gone after', async () => {
    const metrics = new AgentMetrics();
    await sleep(50);
    const blockedUntil = performance.now() + 200;
    while (performance.now() < blockedUntil) {
      // Busy: the loop is blocked, as by a long synchronous commit.
    }
    await sleep(50);
    const first = await metrics.registry.metrics();
    const longest = sample(first, 'edgebridge_nodejs_eventloop_lag_seconds{quantile="1"}');
    assert.ok(longest >= 0.15, `longest delay ${longest} s after blocking for 200 ms`);
    assert.ok(sample(first, 'edgebridge_nodejs_eventloop_lag_seconds{quantile="0.5"}') < longest);
    await sleep(100);
    const second = await metrics.registry.metrics();
    assert.ok(
      sample(second, 'edgebridge_nodejs_eventloop_lag_seconds{quantile="1"}') < 0.15,
      'the block before the last scrape no longer counts',
    );
  });
});
