import { Counter, Gauge, Registry as MetricsRegistry, collectDefaultMetrics } from 'prom-client';

/** The agent's Prometheus metrics; one set per process. */
export class AgentMetrics {
  readonly registry = new MetricsRegistry();
  readonly devices = new Gauge({
    name: 'edgebridge_devices',
    help: 'Devices this node currently registers, by discovery and handler',
    labelNames: ['namespace', 'discovery', 'handler'] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'edgebridge_reconcile_errors_total',
    help: 'Reconcile attempts that failed, by kind (retryable or terminal)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly apiRequests = new Counter({
    name: 'edgebridge_registry_requests_total',
    help: 'Requests to the registry (the Kubernetes API or the embedded store), by verb, resource and result',
    labelNames: ['verb', 'resource', 'code'] as const,
    registers: [this.registry],
  });

  readonly publishDropped = new Counter({
    name: 'edgebridge_device_messages_dropped_total',
    help: 'Device messages dropped because no data plane is running, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /** `processMetrics: false` leaves out the process metrics (for many agents in one process). */
  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'edgebridge_' });
  }
}
