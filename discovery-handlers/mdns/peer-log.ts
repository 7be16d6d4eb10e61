import type { Logger } from 'pino';

/** One line per peer per this long, however much a peer sends. */
const PERIOD_MS = 60_000;
/** Peers remembered at most; the oldest is forgotten first, so memory stays bounded. */
const MAX_PEERS = 1024;

/**
 * Warnings about what peers send, at most one line per peer (or kind of
 * problem) per minute, with the number of occurrences since the last line.
 */
export class PeerLog {
  readonly #log: Logger;
  readonly #peers = new Map<string, { at: number; suppressed: number }>();

  constructor(log: Logger) {
    this.#log = log;
  }

  warn(peer: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const seen = this.#peers.get(peer);
    if (seen !== undefined && now - seen.at < PERIOD_MS) {
      seen.suppressed += 1;
      return;
    }
    this.#peers.delete(peer);
    if (this.#peers.size >= MAX_PEERS) {
      const oldest = this.#peers.keys().next().value;
      if (oldest !== undefined) this.#peers.delete(oldest);
    }
    this.#peers.set(peer, { at: now, suppressed: 0 });
    this.#log.warn({ peer, ...fields, suppressed: seen?.suppressed ?? 0 }, msg);
  }
}
