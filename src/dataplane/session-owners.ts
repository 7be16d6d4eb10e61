// An MQTT session belongs to the principal that made it. The broker keys
// sessions by client id alone, which anyone may send; so a client id that one
// principal holds (connected, or with a session kept for it) is refused to
// every other principal, and the same principal may take its own session over
// as MQTT requires. Sessions kept for clients that are gone are bounded: past
// the bound the least recently used session of the principal that keeps the
// most is ended in the broker (so a principal's flood of sessions ends its
// own, not others'), and only then is its id free.

export interface SessionOwnersOptions {
  /** Sessions kept for gone clients; past this many one is ended (see above). */
  maxStored: number;
  /** Ends the session of a client id in the broker; the id stays held until this settles. */
  forget: (clientId: string) => Promise<void>;
  /** Clock, for tests (default Date.now). */
  now?: () => number;
}

/** A claim's answer: the id is the caller's now, or who holds it. */
export type Claim = { ok: true } | { ok: false; heldBy: 'connection' | 'session' };

interface Owner {
  principal: string;
  /** Connections of this principal using the id (two while one takes over the other). */
  live: number;
  /** When a kept session ends by itself (Infinity: MQTT 3.1.1 sessions never do). */
  expiresAt: number;
  /** Set while the broker ends the session; the id is held until it settles. */
  forgetting?: Promise<void>;
}

/** Who holds each client id on the node broker. */
export class SessionOwners {
  readonly #maxStored: number;
  readonly #forget: (clientId: string) => Promise<void>;
  readonly #now: () => number;
  readonly #owners = new Map<string, Owner>();
  /** Per principal, client ids with a kept session and no connection, least recently used first. */
  readonly #stored = new Map<string, Set<string>>();
  #storedCount = 0;

  constructor(opts: SessionOwnersOptions) {
    this.#maxStored = opts.maxStored;
    this.#forget = opts.forget;
    this.#now = opts.now ?? Date.now;
  }

  /** Client ids held, connected or with a kept session. */
  get size(): number {
    return this.#owners.size;
  }

  /**
   * Called when a principal connects with a client id (after authentication,
   * before the broker looks the session up). Each successful claim must be
   * released once when that connection ends.
   */
  async claim(clientId: string, principal: string): Promise<Claim> {
    for (;;) {
      const owner = this.#owners.get(clientId);
      if (owner === undefined) {
        this.#owners.set(clientId, { principal, live: 1, expiresAt: Infinity });
        return { ok: true };
      }
      if (owner.forgetting !== undefined) {
        await owner.forgetting;
        continue;
      }
      if (owner.live === 0 && owner.expiresAt <= this.#now()) {
        this.#end(clientId, owner);
        continue;
      }
      if (owner.principal !== principal)
        return { ok: false, heldBy: owner.live > 0 ? 'connection' : 'session' };
      owner.live += 1;
      owner.expiresAt = Infinity;
      this.#unstore(clientId, owner);
      return { ok: true };
    }
  }

  /**
   * A claimed connection ended; the broker keeps its session for keepMs
   * (0: a clean session, gone with the connection; Infinity: kept until ended here).
   */
  release(clientId: string, keepMs: number): void {
    const owner = this.#owners.get(clientId);
    if (owner === undefined || owner.live === 0) return;
    owner.live -= 1;
    // The connection that took this one over decides what is kept.
    if (owner.live > 0) return;
    if (keepMs <= 0) {
      this.#owners.delete(clientId);
      return;
    }
    owner.expiresAt = this.#now() + keepMs;
    let ids = this.#stored.get(owner.principal);
    if (ids === undefined) this.#stored.set(owner.principal, (ids = new Set()));
    ids.add(clientId);
    this.#storedCount += 1;
    while (this.#storedCount > this.#maxStored) {
      const oldest = this.#mostStored(ids).values().next().value;
      const stale = oldest === undefined ? undefined : this.#owners.get(oldest);
      if (oldest === undefined || stale === undefined) return;
      this.#end(oldest, stale);
    }
  }

  /** The kept sessions of the principal that keeps the most; `own` (the releasing principal's) on a tie. */
  #mostStored(own: Set<string>): Set<string> {
    let most = own;
    for (const ids of this.#stored.values()) if (ids.size > most.size) most = ids;
    return most;
  }

  #unstore(clientId: string, owner: Owner): void {
    const ids = this.#stored.get(owner.principal);
    if (ids?.delete(clientId) !== true) return;
    this.#storedCount -= 1;
    if (ids.size === 0) this.#stored.delete(owner.principal);
  }

  /** Ends a kept session in the broker, holding its id until that is done. */
  #end(clientId: string, owner: Owner): void {
    this.#unstore(clientId, owner);
    owner.forgetting = this.#forget(clientId)
      .catch(() => undefined)
      .finally(() => {
        if (this.#owners.get(clientId) === owner) this.#owners.delete(clientId);
      });
  }
}
