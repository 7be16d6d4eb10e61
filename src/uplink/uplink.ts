// The uplink's front door: accept() takes a message from the node broker and
// resolves once it is durable in the spool (so that the broker's PUBACK can
// mean "stored"), or at once when its topic does not go up. The sender drains
// the spool to the cloud broker on its own.
import type { Logger } from 'pino';
import {
  MAX_PROPERTIES_BYTES,
  encodeProperties,
  type Spool,
  type SpoolInput,
  type SpoolStats,
} from '../spool/index.ts';
import type { PublishProperties } from '../dataplane/publish-properties.ts';
import { UplinkClosedError, UplinkRefusedError } from './errors.ts';
import type { UplinkRoute, UplinkSelection } from './selection.ts';

/** A message as the node broker hands it over (the embedded broker's beforeAck shape fits). */
export interface NodeMessage extends PublishProperties {
  topic: string;
  payload: Buffer;
}

const REFUSAL_LOG_INTERVAL_MS = 60_000;

export interface UplinkCounters {
  /** Messages stored for the uplink. */
  accepted: number;
  /** Messages whose topic does not go up. */
  skipped: number;
  /** Messages the spool refused (the producer was told). */
  refused: number;
}

export interface UplinkOptions {
  spool: Spool;
  selection: UplinkSelection;
  log: Logger;
  /** Clock for message timestamps (default Date.now). */
  now?: () => number;
}

export class Uplink {
  readonly #spool: Spool;
  readonly #selection: UplinkSelection;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #counts: UplinkCounters = { accepted: 0, skipped: 0, refused: 0 };
  /** Selections that had to look something up, in accept order; later messages queue behind them. */
  #pending: Promise<unknown> | undefined;
  #pendingCount = 0;
  /** Refusals are logged at most once a minute (a full disk refuses, recovers a little, refuses again). */
  #lastRefusalLog = -Infinity;
  #refusedSinceLog = 0;
  /** Messages stored without their oversized properties, logged like refusals. */
  #lastPropertiesLog = -Infinity;
  #propertiesDroppedSinceLog = 0;
  #closed = false;

  constructor(options: UplinkOptions) {
    this.#spool = options.spool;
    this.#selection = options.selection;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Resolves once the message is durable in the spool, or at once when its
   * topic is not selected; rejects with UplinkRefusedError when the spool
   * refuses it. Messages are stored in the order accept() was called.
   */
  accept(msg: NodeMessage): Promise<void> {
    return this.acceptAll([msg]);
  }

  /**
   * accept() for several messages at once, stored together or not at all (one
   * spool append): a bridge that must not store a message after one that was
   * refused hands over what it has received in one call.
   */
  acceptAll(msgs: readonly NodeMessage[]): Promise<void> {
    if (this.#closed) return Promise.reject(new UplinkClosedError());
    const timestamp = this.#now();
    if (this.#pending === undefined) {
      let routes: ReturnType<UplinkSelection['select']>[];
      try {
        routes = msgs.map((m) => this.#selection.select(m.topic));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      if (!routes.some((r) => r instanceof Promise)) {
        return this.#store(msgs, routes as (UplinkRoute | undefined)[], timestamp);
      }
      return this.#queue(
        Promise.all(routes.map(async (r) => r)).then((r) => this.#store(msgs, r, timestamp)),
      );
    }
    // Behind a lookup: wait for it, so that no message overtakes an earlier one.
    return this.#queue(
      this.#pending.then(async () =>
        this.#store(
          msgs,
          await Promise.all(msgs.map(async (m) => this.#selection.select(m.topic))),
          timestamp,
        ),
      ),
    );
  }

  counters(): UplinkCounters {
    return { ...this.#counts };
  }

  spoolStats(): SpoolStats {
    return this.#spool.stats();
  }

  /** Accepts nothing more; the spool is the owner's to close. Idempotent. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Copies the publish's user properties and content type, unless together
   * they are past what the spool keeps: then the message goes up without them
   * (its payload is not lost for them) and one line is logged.
   */
  #withProperties(input: SpoolInput, msg: NodeMessage): void {
    if (msg.userProperties === undefined && msg.contentType === undefined) return;
    const stored = encodeProperties(msg);
    if (stored !== undefined && Buffer.byteLength(stored) > MAX_PROPERTIES_BYTES) {
      this.#propertiesDroppedSinceLog += 1;
      const now = Date.now();
      if (now - this.#lastPropertiesLog >= REFUSAL_LOG_INTERVAL_MS) {
        this.#log.warn(
          {
            topic: msg.topic,
            bytes: Buffer.byteLength(stored),
            limit: MAX_PROPERTIES_BYTES,
            messages: this.#propertiesDroppedSinceLog,
          },
          'uplink: MQTT 5 properties too large to keep; the message goes up without them',
        );
        this.#lastPropertiesLog = now;
        this.#propertiesDroppedSinceLog = 0;
      }
      return;
    }
    if (msg.userProperties !== undefined) input.userProperties = msg.userProperties;
    if (msg.contentType !== undefined) input.contentType = msg.contentType;
  }

  #queue(work: Promise<void>): Promise<void> {
    this.#pendingCount += 1;
    const settled = work
      .catch(() => undefined)
      .finally(() => {
        this.#pendingCount -= 1;
        if (this.#pendingCount === 0) this.#pending = undefined;
      });
    this.#pending = settled;
    return work;
  }

  #store(
    msgs: readonly NodeMessage[],
    routes: readonly (UplinkRoute | undefined)[],
    timestamp: number,
  ): Promise<void> {
    const inputs: SpoolInput[] = [];
    msgs.forEach((msg, i) => {
      const route = routes[i];
      if (route === undefined) return;
      const input: SpoolInput = {
        key: route.key,
        topic: msg.topic,
        payload: msg.payload,
        timestamp,
        priority: route.priority,
      };
      if (route.ttlSeconds !== undefined) input.expiresAt = timestamp + route.ttlSeconds * 1000;
      this.#withProperties(input, msg);
      inputs.push(input);
    });
    this.#counts.skipped += msgs.length - inputs.length;
    if (inputs.length === 0) return Promise.resolve();
    return this.#spool.append(inputs).then(
      () => {
        this.#counts.accepted += inputs.length;
      },
      (err: unknown) => {
        this.#counts.refused += inputs.length;
        const refused = new UplinkRefusedError(inputs[0]?.topic ?? '', err);
        this.#refusedSinceLog += inputs.length;
        const now = Date.now();
        if (now - this.#lastRefusalLog >= REFUSAL_LOG_INTERVAL_MS) {
          this.#log.error(
            {
              code: refused.code,
              spoolCode: refused.spoolCode,
              refused: this.#refusedSinceLog,
              err: refused.message,
            },
            'uplink: the spool refuses messages; producers are told, nothing is acknowledged',
          );
          this.#lastRefusalLog = now;
          this.#refusedSinceLog = 0;
        }
        throw refused;
      },
    );
  }
}
