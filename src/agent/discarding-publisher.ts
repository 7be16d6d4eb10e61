import type { Counter } from 'prom-client';
import type { DevicePublisher } from '../../discovery-handlers/handler.ts';

/**
 * The publisher handlers get while the agent runs without a data plane: it
 * forwards nothing and counts what it dropped, so the loss is visible in /metrics.
 */
export function discardingPublisher(dropped: Counter<'kind'>): DevicePublisher {
  return {
    data: () => dropped.inc({ kind: 'data' }),
    state: () => dropped.inc({ kind: 'state' }),
    event: () => dropped.inc({ kind: 'event' }),
  };
}
