import type { Counter } from 'prom-client';
import type { DiscoveryPublisher } from './discovery-publisher.ts';

/**
 * The publisher handlers get while the agent runs without a data plane
 * (--no-broker): it forwards nothing and counts what it dropped, so the loss
 * is visible in /metrics.
 */
export function discardingPublisher(dropped: Counter<'kind'>): DiscoveryPublisher {
  return {
    data: () => dropped.inc({ kind: 'data' }),
    state: () => dropped.inc({ kind: 'state' }),
    event: () => dropped.inc({ kind: 'event' }),
    observe: () => undefined,
    close: () => Promise.resolve(),
  };
}
