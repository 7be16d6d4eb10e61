// Cloud-to-edge commands: `<prefix>/commands/<namespace>/<device>/<name...>` on
// the cloud broker goes to `edgebridge/v1/<namespace>/<device>/commands/<name...>`
// on the node broker. Every command is untrusted: a bad topic or an oversized
// payload is logged, counted and dropped; the uplink carries on.
import type { IPublishPacket, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { DownlinkRejectedError } from './errors.ts';
import { commandTopic } from './topics.ts';
import { LogLimiter } from '../util/log-limiter.ts';

/** Where commands go: the node broker (an MQTT client of it, or the embedded broker). */
export interface NodePublisher {
  publish(topic: string, payload: Buffer): Promise<void>;
}

export interface DownlinkOptions {
  /** Expanded cloud topic prefix. */
  prefix: string;
  maxPayloadBytes: number;
  /** The node broker now, or undefined while it is unreachable (the command is then not acknowledged). */
  publisher: () => NodePublisher | undefined;
  log: Logger;
}

export interface DownlinkStats {
  forwarded: number;
  rejected: number;
}

export class Downlink {
  readonly #o: DownlinkOptions;
  readonly #stats: DownlinkStats = { forwarded: 0, rejected: 0 };

  readonly #limiter = new LogLimiter();

  constructor(options: DownlinkOptions) {
    this.#o = options;
  }

  stats(): DownlinkStats {
    return { ...this.#stats };
  }

  /** Takes commands from a new cloud connection. */
  async attach(client: MqttClient): Promise<void> {
    // A PUBACK only once the node broker has the command; mqtt.js then sends it.
    client.handleMessage = (packet: IPublishPacket, callback: (err?: Error) => void): void => {
      this.#handle(packet).then(
        () => callback(),
        (err: unknown) => callback(err as Error),
      );
    };
    await client.subscribeAsync(`${this.#o.prefix}/commands/#`, { qos: 1 });
  }

  async #handle(packet: IPublishPacket): Promise<void> {
    const payload =
      typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    let target: string;
    try {
      if (payload.byteLength > this.#o.maxPayloadBytes) {
        throw new DownlinkRejectedError(
          `payload of ${payload.byteLength} bytes exceeds maxPayloadBytes ${this.#o.maxPayloadBytes}`,
        );
      }
      try {
        target = commandTopic(this.#o.prefix, packet.topic).topic;
      } catch (err) {
        throw new DownlinkRejectedError((err as Error).message);
      }
    } catch (err) {
      // Acknowledged and dropped: sending it again would not make it valid.
      this.#stats.rejected += 1;
      const e = err as DownlinkRejectedError;
      // A cloud that sends bad commands in a loop gets a line a minute per kind of mistake.
      this.#limiter.log(
        this.#o.log,
        'warn',
        'dropped',
        e.code,
        { code: e.code, err: e.message },
        'uplink: downlink command dropped',
      );
      return;
    }
    const publisher = this.#o.publisher();
    if (publisher === undefined) throw new Error('node broker unreachable');
    await publisher.publish(target, payload);
    this.#stats.forwarded += 1;
  }
}
