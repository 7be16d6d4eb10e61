import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

// prom-client's index loads every metric type, OpenTelemetry and Node's default
// metrics: ~20 MB of an agent's memory. The agent needs these four classes.
const load = createRequire(import.meta.url);
export const MetricsRegistry = load('prom-client/lib/registry') as typeof PromClient.Registry;
export const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter;
export const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge;
export const Histogram = load('prom-client/lib/histogram') as typeof PromClient.Histogram;
