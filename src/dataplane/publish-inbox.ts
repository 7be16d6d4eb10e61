// One client's publishes on their way through the embedded broker. aedes hands
// over every PUBLISH of a socket chunk in the same turn and reads the next
// chunk only once all of them are done, so the inbox takes a turn's publishes
// as one batch: one run of decisions, one beforeAck (one spool append), and
// the completions in the order the client sent them. Per message, this was a
// chain of ten promises; per batch it is a handful.
import type { PublishPacket } from 'aedes';
import type { Decision } from './access.ts';

/**
 * Called once per publish, in order: null lets it through (delivery, PUBACK);
 * an error closes an MQTT 3.1.1 client and is a negative PUBACK for MQTT 5.
 */
export type PublishDone = (err: Error | null) => void;

export interface PublishInboxOptions {
  /** May the client publish this? A Promise only when a lookup is needed. */
  decide: (packet: PublishPacket) => Decision | Promise<Decision>;
  /** A refused publish: log it, count it; returns the error given to aedes. */
  refused: (packet: PublishPacket, reason: string) => Error;
  /** Makes the allowed publishes durable (all or none); absent, they pass at once. */
  store?: (packets: readonly PublishPacket[]) => Promise<void>;
  /**
   * store() rejected: log it, count it; returns the error given to aedes, or
   * null when each publish was answered already (an MQTT 5 negative PUBACK).
   */
  storeFailed: (packets: readonly PublishPacket[], err: unknown) => Error | null;
  /** Publishes let through. */
  passed: (count: number) => void;
  /**
   * MQTT 5: a refusal is answered per publish and the connection stays, so
   * the publishes after it are decided on their own. Otherwise (MQTT 3.1.1)
   * the rest of the batch shares the refusal's fate: the client is closed.
   */
  decideEach?: boolean;
}

interface Entry {
  packet: PublishPacket;
  done: PublishDone;
}

/** What one batch's decisions came to: the publishes let through, and each refused one's error. */
interface Decided {
  allowed: Entry[];
  stored: Promise<void>;
  refusals: Map<Entry, Error>;
}

const settled = (): undefined => undefined;

export class PublishInbox {
  readonly #opts: PublishInboxOptions;
  #batch: Entry[] = [];
  /** The previous batch's decisions and store() call; the next batch decides after it. */
  #decided: Promise<unknown> = Promise.resolve();
  /** The previous batch's completions; the next batch completes after it. */
  #finished: Promise<unknown> = Promise.resolve();

  constructor(opts: PublishInboxOptions) {
    this.#opts = opts;
  }

  add(packet: PublishPacket, done: PublishDone): void {
    this.#batch.push({ packet, done });
    if (this.#batch.length === 1) queueMicrotask(this.#flush);
  }

  readonly #flush = (): void => {
    const batch = this.#batch;
    this.#batch = [];
    // Wrapped in an array so that awaiting the decisions does not await the store.
    const decided = this.#decided.then(() => this.#decide(batch)).then((d) => [d] as const);
    this.#decided = decided.then(settled, settled);
    const finished = Promise.all([this.#finished, decided]).then(async ([, [d]]) => {
      try {
        await d.stored;
      } catch (err) {
        const failed = this.#opts.storeFailed(
          d.allowed.map((e) => e.packet),
          err,
        );
        for (const e of batch) e.done(d.refusals.get(e) ?? failed);
        return;
      }
      if (d.allowed.length > 0) this.#opts.passed(d.allowed.length);
      for (const e of batch) e.done(d.refusals.get(e) ?? null);
    });
    this.#finished = finished.then(settled, settled);
  };

  /**
   * Decides in order; without decideEach, from the first refusal on the rest
   * of the batch shares its fate (the client is closed).
   */
  async #decide(batch: Entry[]): Promise<Decided> {
    const allowed: Entry[] = [];
    const refusals = new Map<Entry, Error>();
    let refusal: Error | undefined;
    for (const entry of batch) {
      if (refusal !== undefined) {
        refusals.set(entry, refusal);
        continue;
      }
      let decision: Decision;
      try {
        const d = this.#opts.decide(entry.packet);
        decision = d instanceof Promise ? await d : d;
      } catch (err) {
        decision = { ok: false, reason: `access check failed: ${(err as Error).message}` };
      }
      if (decision.ok) {
        allowed.push(entry);
        continue;
      }
      const err = this.#opts.refused(entry.packet, decision.reason);
      refusals.set(entry, err);
      if (this.#opts.decideEach !== true) refusal = err;
    }
    const { store } = this.#opts;
    let stored = Promise.resolve();
    if (store !== undefined && allowed.length > 0) {
      try {
        stored = store(allowed.map((e) => e.packet));
      } catch (err) {
        stored = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    // Awaited in order by the completions; never left unhandled meanwhile.
    stored.catch(settled);
    return { allowed, stored, refusals };
  }
}
