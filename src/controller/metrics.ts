import { PrometheusQueueMetrics } from '../reconcile/metrics.ts';
import { Counter, Gauge, MetricsRegistry } from '../util/prom-classes.ts';

/** The controller's Prometheus metrics; one set per process. */
export class ControllerMetrics {
  readonly registry = new MetricsRegistry();
  /** The reconcile queue of Device and Discovery keys. */
  readonly queue = new PrometheusQueueMetrics(this.registry, 'controller');
  readonly apiRequests = new Counter({
    name: 'edgebridge_controller_api_requests_total',
    help: 'Requests of the controller to the Kubernetes API, by verb, resource and result',
    labelNames: ['verb', 'resource', 'code'] as const,
    registers: [this.registry],
  });
  readonly writeLimit = new Gauge({
    name: 'edgebridge_controller_write_limit',
    help: 'Writes the controller lets be in flight to the Kubernetes API now (adaptive: grows while writes are fast, halves on overload)',
    registers: [this.registry],
  });
  readonly devices = new Gauge({
    name: 'edgebridge_controller_devices',
    help: 'Devices the fold of the DeviceSlices wants, by namespace and discovery',
    labelNames: ['namespace', 'discovery'] as const,
    registers: [this.registry],
  });
}
