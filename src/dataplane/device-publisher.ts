// What a handler publishes for a device id lands on that Device's topics:
// the id becomes the Device name (as the registry names it) in the
// Discovery's namespace. Handler input is checked; bad input is dropped,
// counted and logged once per kind of problem, and never throws.
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { CommandListener, DiscoveredDevice } from '../../discovery-handlers/handler.ts';
import type { DiscoveryPublisher } from '../agent/discovery-publisher.ts';
import { deviceName } from '../api/names.ts';
import type { AgentMetrics } from '../metrics.ts';
import type { NodeBroker } from './node-broker.ts';
import { urlForLog } from '../util/url-for-log.ts';
import {
  dataTopic,
  eventsTopic,
  isStreamName,
  stateTopic,
  TOPIC_ROOT,
  tryParseTopic,
} from './topics.ts';

export interface DevicePublisherOptions {
  broker: NodeBroker;
  namespace: string;
  discovery: string;
  shared: boolean;
  node: string;
  /** Larger data or event payloads are dropped. */
  maxPayloadBytes: number;
  log: Logger;
  metrics?: AgentMetrics;
}

const MAX_ID_LENGTH = 253;
/** Distinct problems remembered for "log once"; beyond this, problems are only counted. */
const MAX_REPORTED = 1000;

type Kind = 'data' | 'state' | 'event';

export class BrokerDevicePublisher implements DiscoveryPublisher {
  readonly #opts: DevicePublisherOptions;
  readonly #names = new Map<string, string>();
  /** Device id -> its data topic (without a stream): made once, not checked again per reading. */
  readonly #dataTopics = new Map<string, string>();
  /** Device name -> id, for the commands that arrive by name. */
  readonly #ids = new Map<string, string>();
  /** Device ids this publisher last said were online. */
  readonly #online = new Set<string>();
  /** Publishes not yet taken by the broker; close() waits for them. */
  #inFlight = 0;
  #drained: PromiseWithResolvers<undefined> | undefined;
  readonly #reported = new Set<string>();
  #closed = false;
  readonly sensorConnection?: () => Duplex;

  constructor(opts: DevicePublisherOptions) {
    this.#opts = opts;
    if (opts.broker.connectSensorClient !== undefined)
      this.sensorConnection = opts.broker.connectSensorClient;
  }

  get brokerUrl(): string {
    return urlForLog(this.#opts.broker.url);
  }

  async commands(onCommand: CommandListener): Promise<() => Promise<void>> {
    // Every device of the namespace: the filter cannot name only this run's, so the name map decides.
    const filter = `${TOPIC_ROOT}/${this.#opts.namespace}/+/commands/#`;
    return this.#opts.broker.subscribe(filter, (message) => {
      const topic = tryParseTopic(message.topic);
      const id = topic === undefined ? undefined : this.#ids.get(topic.device);
      if (id === undefined || topic?.command === undefined || this.#closed) return;
      onCommand(id, topic.command, message.payload);
    });
  }

  data(deviceId: string, payload: Buffer | string, stream?: string): void {
    const name = this.#name('data', deviceId);
    if (name === undefined) return;
    if (stream !== undefined && (typeof stream !== 'string' || !isStreamName(stream))) {
      this.#reject('data', deviceId, 'stream names are 1-64 letters, digits and ._- ');
      return;
    }
    if (!Buffer.isBuffer(payload) && typeof payload !== 'string') {
      this.#reject('data', deviceId, 'payload must be a Buffer or a string');
      return;
    }
    const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    if (!this.#fits('data', deviceId, bytes)) return;
    let topic = stream === undefined ? this.#dataTopics.get(deviceId) : undefined;
    if (topic === undefined) {
      topic = dataTopic(this.#opts.namespace, name, stream);
      if (stream === undefined) this.#dataTopics.set(deviceId, topic);
    }
    this.#publish('data', topic, bytes, false);
  }

  state(deviceId: string, state: 'online' | 'offline'): void {
    const name = this.#name('state', deviceId);
    if (name === undefined) return;
    if (state !== 'online' && state !== 'offline') {
      this.#reject('state', deviceId, "state must be 'online' or 'offline'");
      return;
    }
    if (state === 'online') this.#online.add(deviceId);
    else this.#online.delete(deviceId);
    this.#publish('state', stateTopic(this.#opts.namespace, name), Buffer.from(state), true);
  }

  event(deviceId: string, event: Record<string, unknown>): void {
    const name = this.#name('event', deviceId);
    if (name === undefined) return;
    let text: string | undefined;
    try {
      text = JSON.stringify(event);
    } catch {
      // cycles, BigInt: not JSON
    }
    if (text === undefined || event === null || typeof event !== 'object') {
      this.#reject('event', deviceId, 'events must be JSON objects');
      return;
    }
    const bytes = Buffer.from(text);
    if (!this.#fits('event', deviceId, bytes)) return;
    this.#publish('event', eventsTopic(this.#opts.namespace, name), bytes, false);
  }

  observe(devices: readonly DiscoveredDevice[]): void {
    const listed = new Set(devices.map((d) => d.id));
    for (const id of listed) if (!this.#online.has(id)) this.state(id, 'online');
    for (const id of [...this.#online]) if (!listed.has(id)) this.state(id, 'offline');
  }

  /** Marks this run's devices offline and waits for what is in flight. */
  async close(): Promise<void> {
    if (!this.#closed) {
      for (const id of [...this.#online]) this.state(id, 'offline');
      this.#closed = true;
    }
    if (this.#inFlight === 0) return;
    this.#drained ??= Promise.withResolvers<undefined>();
    await this.#drained.promise;
  }

  /** `deviceId` comes from handler code: checked, not trusted to be a string. */
  #name(kind: Kind, deviceId: unknown): string | undefined {
    if (this.#closed) return undefined;
    if (typeof deviceId !== 'string' || deviceId === '' || deviceId.length > MAX_ID_LENGTH) {
      this.#reject(
        kind,
        String(deviceId).slice(0, 64),
        'device id must be a string of 1-253 characters',
      );
      return undefined;
    }
    let name = this.#names.get(deviceId);
    if (name === undefined) {
      const { discovery, shared, node } = this.#opts;
      name = deviceName(discovery, deviceId, shared, node);
      this.#names.set(deviceId, name);
      this.#ids.set(name, deviceId);
    }
    return name;
  }

  #fits(kind: Kind, deviceId: string, bytes: Buffer): boolean {
    if (bytes.length <= this.#opts.maxPayloadBytes) return true;
    this.#reject(kind, deviceId, `payload larger than ${this.#opts.maxPayloadBytes} bytes`);
    return false;
  }

  #publish(kind: Kind, topic: string, payload: Buffer, retain: boolean): void {
    // A count, not a set of promises: a sensor fleet publishes thousands a second.
    this.#inFlight += 1;
    this.#opts.broker.publish(topic, payload, { qos: 1, retain }).then(
      () => this.#settled(),
      (err: unknown) => {
        this.#report(kind, `publish failed: ${(err as Error).message}`, { topic });
        this.#settled();
      },
    );
  }

  #settled(): void {
    this.#inFlight -= 1;
    if (this.#inFlight === 0 && this.#drained !== undefined) {
      this.#drained.resolve(undefined);
      this.#drained = undefined;
    }
  }

  #reject(kind: Kind, deviceId: string, problem: string): void {
    this.#opts.metrics?.deviceMessagesRejected.inc({ kind });
    this.#report(kind, problem, { deviceId });
  }

  /** One warning per distinct problem and kind; repeats are only counted. */
  #report(kind: Kind, problem: string, fields: Record<string, string>): void {
    const key = `${kind}\u0000${problem}`;
    if (this.#reported.has(key) || this.#reported.size >= MAX_REPORTED) return;
    this.#reported.add(key);
    this.#opts.log.warn(
      { kind, problem, ...fields },
      'device message dropped (repeats are not logged)',
    );
  }
}
