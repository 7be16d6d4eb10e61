import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PrometheusQueueMetrics } from './reconcile/metrics.ts';
import { Counter, Gauge, MetricsRegistry } from './util/prom-classes.ts';

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
  /** The agent's reconcile queue of Discovery keys. */
  readonly discoveryQueue = new PrometheusQueueMetrics(this.registry, 'discovery');
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

  readonly brokerClients = new Gauge({
    name: 'edgebridge_broker_clients',
    help: 'MQTT clients connected to the embedded node broker',
    registers: [this.registry],
  });
  readonly brokerMessagesIn = new Counter({
    name: 'edgebridge_broker_messages_received_total',
    help: 'Messages published on the node broker, by source (client or agent)',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly brokerMessagesOut = new Counter({
    name: 'edgebridge_broker_messages_delivered_total',
    help: 'Messages the embedded node broker delivered to clients',
    registers: [this.registry],
  });
  readonly brokerAuthFailures = new Counter({
    name: 'edgebridge_broker_auth_failures_total',
    help: 'Connections the node broker refused, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly brokerRefused = new Counter({
    name: 'edgebridge_broker_refused_total',
    help: 'Subscriptions and publishes the node broker refused (no grant, bad topic, beforeAck failed), by action',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });
  readonly brokerConnectionsRefused = new Counter({
    name: 'edgebridge_broker_connections_refused_total',
    help: 'Sockets the embedded node broker refused before authentication (limit: --broker-max-connections open)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly brokerSessionsEnded = new Counter({
    name: 'edgebridge_broker_sessions_ended_total',
    help: 'Persistent sessions of gone clients the embedded node broker ended to keep at most --broker-max-connections',
    registers: [this.registry],
  });
  readonly brokerClientErrors = new Counter({
    name: 'edgebridge_broker_client_errors_total',
    help: 'Client connections closed for bad input (oversized or malformed packets, protocol errors)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly deviceMessagesRejected = new Counter({
    name: 'edgebridge_device_messages_rejected_total',
    help: 'Device data, state or events from handlers that were not published (bad device id, stream or size), by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  /** `processMetrics: false` leaves out the process metrics (for many agents in one process). */
  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) this.#processMetrics();
  }

  /** The process figures an operator watches (the standard names), read at each scrape. */
  #processMetrics(): void {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name: `edgebridge_${name}`,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    };
    const started = Date.now() / 1000 - process.uptime();
    gauge(
      'process_start_time_seconds',
      'Start time of the process since the epoch, in seconds',
      () => started,
    );
    new Counter({
      name: 'edgebridge_process_cpu_seconds_total',
      help: 'User and system CPU time spent, in seconds',
      registers,
      collect() {
        const { user, system } = process.cpuUsage();
        this.reset();
        this.inc((user + system) / 1e6);
      },
    });
    gauge('process_resident_memory_bytes', 'Resident memory size, in bytes', () =>
      process.memoryUsage.rss(),
    );
    gauge(
      'nodejs_heap_size_used_bytes',
      'V8 heap in use, in bytes',
      () => process.memoryUsage().heapUsed,
    );
    gauge(
      'nodejs_external_memory_bytes',
      'Memory of C++ objects bound to JavaScript, in bytes',
      () => process.memoryUsage().external,
    );
    // A spool commit's fsync or a burst of broker work blocks everything else
    // the agent does (discovery, other clients): this shows for how long.
    const resolutionMs = 10;
    const delay = monitorEventLoopDelay({ resolution: resolutionMs });
    delay.enable();
    // The histogram holds whole intervals between its timer's runs: the delay is what exceeds one.
    const beyondInterval = (ns: number): number => Math.max(0, ns / 1e6 - resolutionMs) / 1e3;
    new Gauge({
      name: 'edgebridge_nodejs_eventloop_lag_seconds',
      help: 'Event-loop delay since the last scrape, in seconds, at quantile 0.5, 0.99 and 1 (the longest)',
      labelNames: ['quantile'] as const,
      registers,
      collect() {
        // Without a sample since the last scrape the histogram reads NaN.
        const at = (q: number): number =>
          delay.count === 0 ? 0 : beyondInterval(delay.percentile(q));
        this.set({ quantile: '0.5' }, at(50));
        this.set({ quantile: '0.99' }, at(99));
        this.set({ quantile: '1' }, delay.count === 0 ? 0 : beyondInterval(delay.max));
        delay.reset();
      },
    });
  }
}
