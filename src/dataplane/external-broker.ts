// The node broker is an external one (a mosquitto sidecar, --broker-url): the
// agent is one of its clients. That broker authenticates pods itself; the
// agent publishes device data and sees messages through its own connection.
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { BrokerClosedError, BrokerConfigError } from './errors.ts';
import { mqttDebugOptions } from './mqtt-debug.ts';
import type { BrokerMessage, NodeBroker, PublishOptions } from './node-broker.ts';
import { topicMatches } from './topics.ts';
import { LogLimiter } from '../util/log-limiter.ts';

export interface ExternalBrokerOptions {
  /** mqtt://, mqtts://, ws:// or wss://; user:password@ in the URL authenticate the agent. */
  url: string;
  clientId: string;
  /** PEM CA for mqtts:// when the broker's certificate is not signed by a public CA. */
  ca?: Buffer;
  log: Logger;
}

type Handler = (message: BrokerMessage) => void;

export class ExternalBroker implements NodeBroker {
  /** The URL without credentials. */
  readonly url: string;
  readonly #client: MqttClient;
  readonly #log: Logger;
  /** mqtt.js reconnects every second while the broker is down, erring each time. */
  readonly #limiter = new LogLimiter();
  readonly #handlers = new Map<string, Set<Handler>>();
  #closing: Promise<void> | undefined;

  /** Connects in the background: publishes wait (queued by the client) until the broker is reached. */
  constructor(opts: ExternalBrokerOptions) {
    let parsed: URL;
    try {
      parsed = new URL(opts.url);
    } catch {
      throw new BrokerConfigError('--broker-url is not a URL');
    }
    if (!['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:'].includes(parsed.protocol))
      throw new BrokerConfigError(`--broker-url: unsupported scheme ${parsed.protocol}`);
    const safe = new URL(parsed.href);
    safe.username = '';
    safe.password = '';
    this.url = safe.href.replace(/\/$/, '');
    this.#log = opts.log.child({ broker: this.url });
    const options: IClientOptions = {
      clientId: opts.clientId,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      ...mqttDebugOptions(),
      ...(parsed.username !== '' ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password !== '' ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    };
    // Credentials go in the options, not the URL, so the client never logs them.
    this.#client = connect(this.url, options);
    let online = false;
    this.#client.on('connect', () => {
      online = true;
      this.#log.info('connected to the external node broker');
    });
    this.#client.on('offline', () => {
      if (online) {
        this.#limiter.log(
          this.#log,
          'warn',
          'lost',
          '',
          {},
          'lost the external node broker; reconnecting',
        );
      }
      online = false;
    });
    this.#client.on('error', (err) =>
      this.#limiter.log(
        this.#log,
        'warn',
        'error',
        '',
        { err: err.message },
        'external node broker error',
      ),
    );
    this.#client.on('message', (topic, payload, packet) => {
      const message: BrokerMessage = { topic, payload, qos: packet.qos, retain: packet.retain };
      for (const [filter, handlers] of this.#handlers) {
        if (!topicMatches(filter, topic)) continue;
        for (const handler of handlers) {
          try {
            handler(message);
          } catch (err) {
            this.#log.error(
              { err: (err as Error).message, topic },
              'node broker subscriber failed',
            );
          }
        }
      }
    });
  }

  async publish(
    topic: string,
    payload: Buffer | string,
    options: PublishOptions = {},
  ): Promise<void> {
    if (this.#closing !== undefined) throw new BrokerClosedError();
    await this.#client.publishAsync(topic, payload, {
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
    });
  }

  async subscribe(filter: string, onMessage: Handler): Promise<() => Promise<void>> {
    if (this.#closing !== undefined) throw new BrokerClosedError();
    let handlers = this.#handlers.get(filter);
    if (handlers === undefined) {
      handlers = new Set();
      this.#handlers.set(filter, handlers);
      await this.#client.subscribeAsync(filter, { qos: 1 });
    }
    handlers.add(onMessage);
    const set = handlers;
    return async () => {
      if (!set.delete(onMessage) || set.size > 0 || this.#handlers.get(filter) !== set) return;
      this.#handlers.delete(filter);
      if (this.#closing === undefined) await this.#client.unsubscribeAsync(filter);
    };
  }

  /** Connected: sends what is in flight, then disconnects. Offline: gives up the queue at once. */
  close(): Promise<void> {
    this.#closing ??= this.#client.endAsync(!this.#client.connected);
    return this.#closing;
  }

  async destroy(): Promise<void> {
    this.#closing ??= this.#client.endAsync(true);
    await this.#closing;
  }
}
