import type * as PromClient from 'prom-client';
import { Counter, Gauge, Histogram } from '../util/prom-classes.ts';
import type { Outcome } from './result.ts';

/** What a reconcile queue reports; tests pass a recording fake. */
export interface QueueMetrics {
  /** Keys waiting to be handed out. */
  depth(n: number): void;
  /** A key was queued (not counting adds of a key already queued). */
  added(): void;
  /** A key was requeued with its backoff. */
  retried(): void;
  /** A reconcile ended in `outcome` after `seconds`. */
  reconciled(outcome: Outcome, seconds: number): void;
}

export const noQueueMetrics: QueueMetrics = {
  depth: () => undefined,
  added: () => undefined,
  retried: () => undefined,
  reconciled: () => undefined,
};

/** Reconcile durations: from a no-op pass (sub-millisecond) to a large removal (minutes). */
const DURATION_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 120];

/**
 * The queue's figures under the names of controller-runtime's, labelled with
 * the queue's name; one instance per queue name and registry.
 */
export class PrometheusQueueMetrics implements QueueMetrics {
  readonly #labels: { name: string };
  readonly #depth: PromClient.Gauge<'name'>;
  readonly #adds: PromClient.Counter<'name'>;
  readonly #retries: PromClient.Counter<'name'>;
  readonly #duration: PromClient.Histogram<'name'>;
  readonly #outcomes: PromClient.Counter<'name' | 'outcome'>;

  constructor(registry: PromClient.Registry, name: string) {
    const registers = [registry];
    this.#labels = { name };
    this.#depth = new Gauge({
      name: 'edgebridge_workqueue_depth',
      help: 'Keys waiting in a reconcile queue, by queue',
      labelNames: ['name'] as const,
      registers,
    });
    this.#adds = new Counter({
      name: 'edgebridge_workqueue_adds_total',
      help: 'Keys added to a reconcile queue (an add of a key already waiting is not counted), by queue',
      labelNames: ['name'] as const,
      registers,
    });
    this.#retries = new Counter({
      name: 'edgebridge_workqueue_retries_total',
      help: 'Keys requeued with their backoff after a failed or unfinished reconcile, by queue',
      labelNames: ['name'] as const,
      registers,
    });
    this.#duration = new Histogram({
      name: 'edgebridge_reconcile_duration_seconds',
      help: 'Time one reconcile of a key took, by queue',
      labelNames: ['name'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#outcomes = new Counter({
      name: 'edgebridge_reconcile_total',
      help: 'Reconciles by queue and outcome (done, requeue_after, requeue, error, terminal)',
      labelNames: ['name', 'outcome'] as const,
      registers,
    });
    this.#depth.set(this.#labels, 0);
  }

  depth(n: number): void {
    this.#depth.set(this.#labels, n);
  }

  added(): void {
    this.#adds.inc(this.#labels);
  }

  retried(): void {
    this.#retries.inc(this.#labels);
  }

  reconciled(outcome: Outcome, seconds: number): void {
    this.#duration.observe(this.#labels, seconds);
    this.#outcomes.inc({ ...this.#labels, outcome });
  }
}
