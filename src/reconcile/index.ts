export { systemClock, type Clock, type ClockTimer } from './clock.ts';
export { TerminalError, UnavailableError } from './errors.ts';
export { PrometheusQueueMetrics, noQueueMetrics, type QueueMetrics } from './metrics.ts';
export {
  QueueStartedError,
  ReconcileQueue,
  type Reconciler,
  type ReconcileQueueOptions,
} from './reconcile-queue.ts';
export { done, requeue, requeueAfter, type Outcome, type Result } from './result.ts';
