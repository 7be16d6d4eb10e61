// Takes messages from an external node broker (a mosquitto sidecar, say) as
// an MQTT client, like a mosquitto bridge: a persistent session (clean start
// off, long session expiry) subscribed with QoS 1, so that the broker keeps
// what arrives while the agent is down, and a PUBACK only once accept() has
// the message durable. The embedded broker calls accept() from its beforeAck
// hook instead and needs none of this.
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { Backoff, type BackoffOptions } from '../util/backoff.ts';
import { urlForLog } from '../util/url-for-log.ts';
import { publishPropertiesOf } from '../dataplane/publish-properties.ts';
import { connectOnce } from './connect-once.ts';
import { keepConnected } from './keep-connected.ts';
import { pubacks } from './publish-encoder.ts';
import type { NodeMessage } from './uplink.ts';

/** How long the node broker keeps this client's session (and its messages) while it is away. */
const SESSION_EXPIRY_SECONDS = 7 * 24 * 3600;
/** Messages the node broker may send before their PUBACKs (spool group commits take many at once). */
const RECEIVE_MAXIMUM = 2000;
/**
 * Most payload bytes stored in one append. A reconnect redelivers everything
 * unacknowledged at once; as one transaction it needs disk room in
 * proportion, and on a disk that is nearly full it may never fit, while
 * smaller ones do as the backlog drains.
 */
const MAX_APPEND_BYTES = 256 * 1024;
/** After the spool refused a message: the next try, soon, so that recovery is quick once space is back. */
const REFUSED_BACKOFF: BackoffOptions = { initialMs: 250, capMs: 5000 };

/**
 * mqtt.js sends a PUBACK only when its handleMessage callback succeeds, and
 * handles the next packet only after that: waiting there for durability would
 * allow one message per spool commit. So the callback reports "not handled
 * here" (no PUBACK, next packet at once) and the PUBACK is sent once the
 * message is durable, through the client's packet writer, in arrival order.
 */
const DEFERRED = new Error('PUBACK deferred until the message is durable');

/** PUBACKs go straight to the socket, a batch's in one write (per-packet writes cost more than storing). */
interface PacketWriter {
  stream: { write(chunk: Buffer): boolean };
}

export interface NodeBrokerSourceOptions {
  url: string;
  clientId: string;
  /** Topic filters to take (QoS 1). */
  filters: readonly string[];
  /** Stores messages together or not at all (Uplink.acceptAll). */
  accept: (msgs: readonly NodeMessage[]) => Promise<void>;
  /** Credentials for each connection. */
  connectionOptions?: () => Promise<IClientOptions>;
  log: Logger;
  backoff?: BackoffOptions;
}

export interface NodeBrokerSourceStats {
  /** Connected and subscribed. */
  subscribed: boolean;
  /** Messages received from the node broker (redeliveries included). */
  received: number;
}

export class NodeBrokerSource {
  readonly #o: NodeBrokerSourceOptions;
  #client: MqttClient | undefined;
  readonly #stats: NodeBrokerSourceStats = { subscribed: false, received: 0 };

  constructor(options: NodeBrokerSourceOptions) {
    this.#o = options;
  }

  /** The current connection to the node broker, if any (the downlink publishes through it). */
  get client(): MqttClient | undefined {
    return this.#client;
  }

  stats(): NodeBrokerSourceStats {
    return { ...this.#stats };
  }

  /** Takes messages until the signal aborts; rejects only with an UplinkConfigError. */
  async run(signal: AbortSignal): Promise<void> {
    const refusedBackoff = new Backoff(REFUSED_BACKOFF);
    await keepConnected(
      {
        peer: 'node broker',
        url: this.#o.url,
        log: this.#o.log,
        backoff: this.#o.backoff,
        connect: async () => {
          const session = new SourceSession((msgs) => {
            this.#stats.received += msgs.length;
            return this.#o.accept(msgs);
          });
          const options = (await this.#o.connectionOptions?.()) ?? {};
          const connection = await connectOnce(
            this.#o.url,
            {
              ...options,
              clientId: this.#o.clientId,
              clean: false,
              properties: {
                sessionExpiryInterval: SESSION_EXPIRY_SECONDS,
                receiveMaximum: RECEIVE_MAXIMUM,
              },
            },
            signal,
            (client) => session.attach(client),
          );
          return { client: connection.client, session };
        },
        use: async ({ client, session }) => {
          const reason = await this.#session(client, session, signal);
          if (reason !== 'refused') {
            refusedBackoff.reset();
            return { reason };
          }
          return { reason, retryInMs: refusedBackoff.nextDelay() };
        },
      },
      signal,
    );
  }

  async #session(client: MqttClient, session: SourceSession, signal: AbortSignal): Promise<string> {
    const { log } = this.#o;
    const ended = (why: string): void => session.end(why);
    const onError = (err: Error): void => ended(err.message);
    const onClose = (): void => ended('connection closed');
    const onAbort = (): void => ended('stopping');
    client.on('error', onError);
    client.on('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
    this.#client = client;
    try {
      await client.subscribeAsync(
        this.#o.filters.map((f) => f),
        { qos: 1 },
      );
      this.#stats.subscribed = true;
      log.info(
        { url: urlForLog(this.#o.url), filters: this.#o.filters },
        'uplink: taking messages from the node broker',
      );
    } catch (err) {
      ended(`subscribe failed: ${(err as Error).message}`);
    }
    const why = await session.ended;
    this.#stats.subscribed = false;
    signal.removeEventListener('abort', onAbort);
    this.#client = undefined;
    // Let the PUBACKs of what is already durable go out before leaving.
    if (why === 'stopping') await session.drained();
    client.off('error', onError);
    client.off('close', onClose);
    client.on('error', () => undefined);
    await client.endAsync(why !== 'stopping').catch(() => undefined);
    return why;
  }
}

/**
 * One connection's handling of PUBLISH packets: what arrived while the last
 * append was under way is appended next, as one batch, and acknowledged once
 * durable, in arrival order. After a refusal nothing more is stored or
 * acknowledged on this connection, so that no message is stored after one
 * that was refused (the broker sends everything unacknowledged again after the
 * reconnect, in order).
 */
class SourceSession {
  readonly #accept: (msgs: readonly NodeMessage[]) => Promise<void>;
  #queue: { msg: NodeMessage; messageId: number | undefined }[] = [];
  #appending: Promise<void> | undefined;
  #refused = false;
  #client: MqttClient | undefined;
  #end: (why: string) => void = () => undefined;
  readonly ended = new Promise<string>((resolve) => (this.#end = resolve));

  constructor(accept: (msgs: readonly NodeMessage[]) => Promise<void>) {
    this.#accept = accept;
  }

  end(why: string): void {
    this.#end(why);
  }

  /** Settles once what is being stored now has been stored (or refused) and acknowledged. */
  async drained(): Promise<void> {
    while (this.#appending !== undefined) await this.#appending;
  }

  attach(client: MqttClient): void {
    this.#client = client;
    client.handleMessage = (packet: IPublishPacket, callback: (err?: Error) => void): void => {
      const payload =
        typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      this.#queue.push({
        msg: { topic: packet.topic, payload, ...publishPropertiesOf(packet.properties) },
        messageId: packet.qos === 0 ? undefined : packet.messageId,
      });
      this.#appending ??= this.#pump();
      callback(packet.qos === 0 ? undefined : DEFERRED);
    };
  }

  async #pump(): Promise<void> {
    while (this.#queue.length > 0 && !this.#refused) {
      const batch = this.#queue.splice(0, batchLength(this.#queue));
      try {
        await this.#accept(batch.map((b) => b.msg));
      } catch {
        this.#refused = true;
        this.#end('refused');
        break;
      }
      const client = this.#client;
      if (client === undefined || !client.connected) break;
      const ids: number[] = [];
      for (const { messageId } of batch) if (messageId !== undefined) ids.push(messageId);
      if (ids.length > 0) (client as unknown as PacketWriter).stream.write(pubacks(ids));
    }
    this.#queue = [];
    this.#appending = undefined;
  }
}

/** How many of the first queued messages go in one append (at least one). */
function batchLength(queue: readonly { msg: NodeMessage }[]): number {
  let bytes = 0;
  let n = 0;
  while (n < queue.length && (n === 0 || bytes < MAX_APPEND_BYTES)) {
    bytes += queue[n]?.msg.payload.length ?? 0;
    n += 1;
  }
  return n;
}
