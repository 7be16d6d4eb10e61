// The uplink sender: takes batches from the spool and publishes them to the
// cloud broker with QoS 1, many in flight, acknowledging a batch to the spool
// once every message of it has its PUBACK. On a lost connection it reconnects
// with capped, jittered backoff and rewinds the spool, so that everything not
// acknowledged is sent again oldest first, before anything newer: per device,
// the first arrivals at the cloud stay in order, and duplicates (at-least-once)
// carry the same message id.
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Spool, SpoolBatch, SpoolMessage } from '../spool/index.ts';
import type { BackoffOptions } from '../util/backoff.ts';
import {
  NoStore,
  PACKET_TOO_LARGE,
  publishBatch,
  TOPIC_NAME_INVALID,
  type OutgoingPublish,
} from './batch-publisher.ts';
import { LogLimiter } from '../util/log-limiter.ts';
import { urlForLog } from '../util/url-for-log.ts';
import { connectOnce } from './connect-once.ts';
import { keepConnected } from './keep-connected.ts';
import { remoteTopic } from './topics.ts';

/** MQTT 5 user properties on every message sent up. */
export const PROP_ID = 'edgebridge-id';
export const PROP_TIMESTAMP = 'edgebridge-timestamp';
export const PROP_HISTORICAL = 'edgebridge-historical';

/** Most messages taken from the spool in one read. */
const READ_MAX = 1000;
/**
 * The loop reads again once this share of the window is free, not at every
 * PUBACK: reading, writing and acknowledging one message at a time cost more
 * than the messages.
 */
const REFILL_AT = 0.5;
/** MQTT's largest packet, when the broker states no Maximum Packet Size. */
const MQTT_MAX_PACKET = 268_435_455;
/**
 * PUBACK reason codes that say this message will never be taken (bad topic,
 * too large, bad payload format): it is dropped, counted and logged, rather
 * than blocking everything behind it. Other refusals are retried.
 */
const NEVER_TAKEN = new Set([TOPIC_NAME_INVALID, PACKET_TOO_LARGE, 0x99]);
/**
 * The loop looks at the spool at least this often even without an event, so
 * that a missed wake-up cannot leave messages waiting.
 */
const LOOK_AGAIN_MS = 1000;
/** Messages in flight with no PUBACK for this long: the connection is treated as lost and everything is sent again. */
const STALLED_MS = 30_000;

export interface CloudSenderOptions {
  spool: Spool;
  url: string;
  clientId: string;
  keepaliveSeconds: number;
  /** Most messages awaiting PUBACK; also bounded by the broker's Receive Maximum. */
  maxInFlight: number;
  /** Expanded cloud topic prefix. */
  prefix: string;
  /** Credentials and TLS for each connection; an UplinkConfigError stops the sender. */
  connectionOptions: () => Promise<IClientOptions>;
  log: Logger;
  /** Called with each new connection before sending starts (the downlink subscribes here). */
  onConnect?: (client: MqttClient) => Promise<void>;
  backoff?: BackoffOptions;
}

export interface CloudSenderStats {
  connected: boolean;
  /** Messages the cloud broker acknowledged. */
  published: number;
  /** Messages sent again after a lost connection. */
  resent: number;
  /** Messages the cloud refused for good (dropped, counted). */
  rejected: number;
  /** Successful connections. */
  connects: number;
}

export class CloudSender {
  readonly #o: CloudSenderOptions;
  /** Per-message failures repeat for every message of a backlog. */
  readonly #limiter = new LogLimiter();
  readonly #stats: CloudSenderStats = {
    connected: false,
    published: 0,
    resent: 0,
    rejected: 0,
    connects: 0,
  };
  /** Ids sent and not acknowledged on the current connection; what a reconnect sends again. */
  #unacked = new Set<string>();
  #resend = new Set<string>();
  /** Something changed (new messages, a PUBACK, a lost connection): the loop looks again. */
  #dirty = false;
  #wake: (() => void) | undefined;
  readonly #onAppended = (): void => this.#poke();

  constructor(options: CloudSenderOptions) {
    this.#o = options;
  }

  stats(): CloudSenderStats {
    return { ...this.#stats };
  }

  /** Sends until the signal aborts; rejects only with a terminal UplinkConfigError. */
  async run(signal: AbortSignal): Promise<void> {
    const { log } = this.#o;
    this.#o.spool.on('appended', this.#onAppended);
    const onAbort = (): void => this.#poke();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await keepConnected(
        {
          peer: 'cloud broker',
          url: this.#o.url,
          log,
          backoff: this.#o.backoff,
          connect: async () =>
            connectOnce(
              this.#o.url,
              {
                ...(await this.#o.connectionOptions()),
                clientId: this.#o.clientId,
                keepalive: this.#o.keepaliveSeconds,
                clean: true,
                // The spool is the store: a reconnect resends from there.
                outgoingStore: new NoStore(),
              },
              signal,
            ),
          use: async ({ client, connack }) => {
            const receiveMaximum = connack.properties?.receiveMaximum ?? 65535;
            const window = Math.max(1, Math.min(this.#o.maxInFlight, receiveMaximum));
            const maxPacketSize = connack.properties?.maximumPacketSize ?? MQTT_MAX_PACKET;
            log.info(
              { url: urlForLog(this.#o.url), window },
              'uplink: connected to the cloud broker',
            );
            const reason = await this.#session(client, window, maxPacketSize, signal);
            client.end(true);
            return { reason };
          },
        },
        signal,
      );
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#o.spool.off('appended', this.#onAppended);
      this.#stats.connected = false;
    }
  }

  /** Sends over one connection until it is lost (resolves with why) or the signal aborts. */
  async #session(
    client: MqttClient,
    window: number,
    maxPacketSize: number,
    signal: AbortSignal,
  ): Promise<string> {
    const { spool, log } = this.#o;
    let lost: string | undefined;
    const onLost = (why: string) => (): void => {
      lost ??= why;
      this.#poke();
    };
    const onError = (err: Error): void => onLost(err.message)();
    const onClose = onLost('connection closed');
    const onDisconnect = onLost('the broker sent DISCONNECT');
    client.on('error', onError);
    client.on('close', onClose);
    client.on('disconnect', onDisconnect);
    this.#stats.connected = true;
    this.#stats.connects += 1;
    const connectedAt = Date.now();
    // Whatever the last connection left unacknowledged goes first, in order.
    spool.rewind();
    for (const id of this.#unacked) this.#resend.add(id);
    this.#unacked = new Set();
    let inFlight = 0;
    let progressAt = Date.now();
    const refillAt = Math.max(1, Math.floor(window * REFILL_AT));
    try {
      await this.#o.onConnect?.(client);
      while (lost === undefined && !signal.aborted) {
        this.#dirty = false;
        if (inFlight > 0 && Date.now() - progressAt > STALLED_MS) {
          lost = `no PUBACK for ${STALLED_MS / 1000} s with ${inFlight} messages in flight`;
          break;
        }
        if (window - inFlight < refillAt) {
          await this.#idle();
          continue;
        }
        const batch = await spool.read(Math.min(READ_MAX, window - inFlight));
        if (batch.messages.length === 0) {
          await this.#idle();
          continue;
        }
        // Read but not sent if the connection went meanwhile: the next rewind has it.
        if (lost !== undefined) break;
        if (inFlight === 0) progressAt = Date.now();
        inFlight += batch.messages.length;
        this.#publish(
          client,
          batch,
          connectedAt,
          maxPacketSize,
          () => {
            inFlight -= 1;
            progressAt = Date.now();
            this.#poke();
          },
          (why) => onLost(why)(),
        );
      }
    } catch (err) {
      lost ??= (err as Error).message;
      log.warn({ err: (err as Error).message }, 'uplink: sending stopped');
    } finally {
      this.#stats.connected = false;
      client.off('error', onError);
      client.off('close', onClose);
      client.off('disconnect', onDisconnect);
      client.on('error', () => undefined);
    }
    return lost ?? 'stopped';
  }

  #publish(
    client: MqttClient,
    batch: SpoolBatch,
    connectedAt: number,
    maxPacketSize: number,
    settled: () => void,
    fail: (why: string) => void,
  ): void {
    const { spool, log } = this.#o;
    let pending = batch.messages.length;
    let failed = false;
    const done = (): void => {
      settled();
      pending -= 1;
      if (pending === 0 && !failed) {
        spool.ack(batch).catch((err: unknown) => {
          this.#limiter.log(
            log,
            'warn',
            'ack-failed',
            '',
            { err: (err as Error).message },
            'uplink: acknowledging a sent batch failed; it will be sent again',
          );
        });
      }
    };
    const now = Date.now();
    const outgoing: OutgoingPublish[] = [];
    for (const m of batch.messages) {
      const resent = this.#resend.delete(m.id);
      if (resent) this.#stats.resent += 1;
      this.#unacked.add(m.id);
      outgoing.push({
        topic: remoteTopic(this.#o.prefix, m.topic),
        payload: m.payload,
        userProperties: userProperties(m, resent || m.timestamp < connectedAt),
        messageUserProperties: m.userProperties,
        contentType: m.contentType,
        messageExpiryInterval:
          m.expiresAt === undefined
            ? undefined
            : Math.max(1, Math.ceil((m.expiresAt - now) / 1000)),
        done: (err) => {
          if (err === undefined || err === null) {
            this.#unacked.delete(m.id);
            this.#stats.published += 1;
            done();
            return;
          }
          const code = err.code;
          if (typeof code === 'number' && NEVER_TAKEN.has(code)) {
            this.#unacked.delete(m.id);
            this.#stats.rejected += 1;
            this.#limiter.log(
              log,
              'error',
              'refused-for-good',
              String(code),
              { id: m.id, topic: m.topic, reasonCode: code, err: err.message },
              'uplink: the cloud broker refused a message for good; dropped',
            );
            done();
            return;
          }
          // Connection gone, or a refusal worth retrying: reconnect and resend.
          failed = true;
          settled();
          fail(typeof code === 'number' ? `PUBACK: ${err.message}` : err.message);
        },
      });
    }
    publishBatch(client, outgoing, maxPacketSize);
  }

  #poke(): void {
    this.#dirty = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Waits for the next poke (or LOOK_AGAIN_MS), unless one came since the loop last looked. */
  #idle(): Promise<void> {
    if (this.#dirty) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#poke(), LOOK_AGAIN_MS);
      timer.unref();
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

function userProperties(m: SpoolMessage, historical: boolean): Record<string, string> {
  const props: Record<string, string> = {
    [PROP_ID]: m.id,
    [PROP_TIMESTAMP]: String(m.timestamp),
  };
  if (historical) props[PROP_HISTORICAL] = 'true';
  return props;
}
