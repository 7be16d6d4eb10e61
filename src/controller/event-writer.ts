// Where the event recorder writes: events.k8s.io/v1 Events through the slim
// client (kubectl describe reads them through core/v1, where `regarding` is
// the involvedObject and `series.count` the count it prints as "x5 over 3m").
import type { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { resourcePath } from '../registry/kubernetes/client/paths.ts';

/** The object an Event is about; the uid lets `kubectl describe` find it. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

/** events.k8s.io/v1 Event, the fields the recorder writes. */
export interface KubeEvent {
  apiVersion: 'events.k8s.io/v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  eventTime: string;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  note: string;
  type: 'Normal' | 'Warning';
  regarding: ObjectRef;
  series?: { count: number; lastObservedTime: string };
}

/**
 * contract: writes Events. Both fail with the slim client's errors
 * (KubeApiError 404 when the Event to patch is gone, e.g. expired after its TTL).
 */
export interface EventWriter {
  create(event: KubeEvent, signal: AbortSignal): Promise<void>;
  /** Sets the Event's series (count >= 2) to say it happened again. */
  patchSeries(
    namespace: string,
    name: string,
    series: { count: number; lastObservedTime: string },
    signal: AbortSignal,
  ): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 10_000;

function eventsPath(namespace: string, name?: string): string {
  return resourcePath({
    group: 'events.k8s.io',
    version: 'v1',
    plural: 'events',
    namespace,
    ...(name !== undefined ? { name } : {}),
  });
}

/** Events through the Kubernetes API. */
export class KubeEventWriter implements EventWriter {
  readonly #client: KubeClient;

  constructor(client: KubeClient) {
    this.#client = client;
  }

  async create(event: KubeEvent, signal: AbortSignal): Promise<void> {
    await this.#client.request('POST', eventsPath(event.metadata.namespace), {
      body: event,
      signal,
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
  }

  async patchSeries(
    namespace: string,
    name: string,
    series: { count: number; lastObservedTime: string },
    signal: AbortSignal,
  ): Promise<void> {
    await this.#client.request('PATCH', eventsPath(namespace, name), {
      body: { series },
      contentType: 'application/merge-patch+json',
      signal,
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
  }
}
