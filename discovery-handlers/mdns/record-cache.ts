// The DNS-SD records one node has heard, as plain data: what is known of each
// service instance (PTR -> SRV, TXT -> A/AAAA), with TTLs, goodbyes (TTL 0) and
// size caps. No sockets or timers: the adapter feeds it decoded responses and
// the time, and asks what is current.

/** One service instance with everything needed to list it. */
export interface Instance {
  /** Full name, e.g. `Edge Cam 1._http._tcp.local`. */
  fqdn: string;
  /** The instance label, e.g. `Edge Cam 1`. */
  name: string;
  /** Service type without the domain, e.g. `_http._tcp`. */
  type: string;
  host: string;
  port: number;
  addresses: string[];
  /** TXT entries in the order received, first of each key (case-insensitive) only. */
  txt: [string, string][];
}

export interface CacheLimits {
  maxInstances: number;
  /** Service types learnt through the `_services._dns-sd._udp` wildcard. */
  maxTypes: number;
  maxAddressesPerHost: number;
  maxTxtEntries: number;
  maxTxtValue: number;
}

export const DEFAULT_LIMITS: Omit<CacheLimits, 'maxInstances'> = {
  maxTypes: 256,
  maxAddressesPerHost: 16,
  maxTxtEntries: 64,
  maxTxtValue: 1024,
};

/** What one response did that the adapter should act on or report. */
export interface ApplyResult {
  /** Service types first seen through the wildcard: query them. */
  newTypes: string[];
  /** Instances not tracked because the cap was reached. */
  capped: number;
  /** Records of a type we use whose data was not what DNS-SD allows. */
  malformed: number;
}

export const WILDCARD = '_services._dns-sd._udp.local';
/** TTLs above a day are treated as a day: records are refreshed long before. */
const MAX_TTL_S = 86_400;
/** An instance not announced for this long may give its place to a new one when the table is full. */
const STALE_MS = 10_000;
/** A record is queried again once this share of its TTL has passed (RFC 6762 5.2 says 80%). */
const REFRESH_AT = 0.8;
/** A missing record is asked for at most this often. */
const ASK_AGAIN_MS = 1000;
/** Questions handed out per call, so that a query fits one datagram. */
const MAX_QUESTIONS = 32;

interface Timed {
  expires: number;
  refreshAt: number;
  refreshed: boolean;
}
interface Ptr extends Timed {
  fqdn: string;
  type: string;
  /** When SRV and TXT were last asked for while missing. */
  askedAt: number;
  /** When this PTR record was last received. */
  seenAt: number;
}
interface Srv extends Timed {
  host: string;
  port: number;
  /** When addresses were last asked for while missing. */
  askedAt: number;
}
interface Txt extends Timed {
  entries: [string, string][];
}

interface RawRecord {
  name: string;
  type: string;
  ttl: number;
  flush: boolean;
  data: unknown;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const key = (name: string): string => name.toLowerCase().replace(/\.$/, '');

function asRecord(r: unknown): RawRecord | undefined {
  if (r === null || typeof r !== 'object') return undefined;
  const { name, type, ttl, flush, data } = r as Record<string, unknown>;
  if (typeof name !== 'string' || typeof type !== 'string' || typeof ttl !== 'number')
    return undefined;
  if (name.length === 0 || name.length > 1024 || !Number.isFinite(ttl) || ttl < 0) return undefined;
  return { name, type, ttl, flush: flush === true, data };
}

export class RecordCache {
  readonly #limits: CacheLimits;
  readonly #wildcard: boolean;
  /** Browsed service types, by lower-case fqdn (`_http._tcp.local`). */
  readonly #types = new Map<string, string>();
  readonly #ptr = new Map<string, Ptr>();
  readonly #srv = new Map<string, Srv>();
  readonly #txt = new Map<string, Txt>();
  readonly #addresses = new Map<string, Map<string, Timed>>();
  /** Bumped whenever what instances() returns changes. */
  #version = 0;

  /** `types`: fqdns such as `_http._tcp.local`; none: every type, learnt through the wildcard. */
  constructor(types: string[], limits: CacheLimits) {
    this.#limits = limits;
    this.#wildcard = types.length === 0;
    for (const t of types) this.#types.set(key(t), t);
  }

  get version(): number {
    return this.#version;
  }

  /** Service types browsed now (fqdn). */
  types(): string[] {
    return [...this.#types.values()];
  }

  /** Applies the answers and additionals of one response received at `now` (ms). */
  apply(records: readonly unknown[], now: number): ApplyResult {
    const result: ApplyResult = { newTypes: [], capped: 0, malformed: 0 };
    const parsed: RawRecord[] = [];
    for (const r of records) {
      const rec = asRecord(r);
      if (rec !== undefined) parsed.push(rec);
      else result.malformed += 1;
    }
    // PTRs first: SRV, TXT and addresses are kept only for instances and hosts already known.
    for (const r of parsed) if (r.type === 'PTR') this.#applyPtr(r, now, result);
    for (const r of parsed) if (r.type === 'SRV') this.#applySrv(r, now, result);
    for (const r of parsed) if (r.type === 'TXT') this.#applyTxt(r, now, result);
    const flushed = new Set<string>();
    for (const r of parsed)
      if (r.type === 'A' || r.type === 'AAAA') this.#applyAddress(r, now, result, flushed);
    return result;
  }

  #timing(ttl: number, now: number): Timed {
    const ms = Math.min(ttl, MAX_TTL_S) * 1000;
    return { expires: now + ms, refreshAt: now + ms * REFRESH_AT, refreshed: false };
  }

  #applyPtr(r: RawRecord, now: number, result: ApplyResult): void {
    const owner = key(r.name);
    // A name with control characters could not be a Device id: counted here, per peer, not logged per device.
    if (
      typeof r.data !== 'string' ||
      r.data.length === 0 ||
      r.data.length > 1024 ||
      CONTROL.test(r.data)
    ) {
      result.malformed += 1;
      return;
    }
    if (owner === WILDCARD) {
      if (!this.#wildcard || r.ttl === 0) return;
      const type = key(r.data);
      if (!this.#types.has(type) && this.#types.size < this.#limits.maxTypes) {
        this.#types.set(type, r.data.replace(/\.$/, ''));
        result.newTypes.push(r.data.replace(/\.$/, ''));
      }
      return;
    }
    if (!this.#types.has(owner)) return;
    const instance = key(r.data);
    // The instance must be `<label>.<type>`: anything else is not a DNS-SD instance of this type.
    if (!instance.endsWith(`.${owner}`) || instance.length === owner.length + 1) {
      result.malformed += 1;
      return;
    }
    if (r.ttl === 0) {
      this.#forget(instance);
      return;
    }
    const known = this.#ptr.get(instance);
    if (
      known === undefined &&
      this.#ptr.size >= this.#limits.maxInstances &&
      !this.#evictIncomplete() &&
      !this.#evictSoonestExpiring(now)
    ) {
      result.capped += 1;
      return;
    }
    this.#ptr.set(instance, {
      fqdn: r.data.replace(/\.$/, ''),
      type: owner,
      askedAt: known?.askedAt ?? -Infinity,
      seenAt: now,
      ...this.#timing(r.ttl, now),
    });
    if (known === undefined && this.#srv.has(instance)) this.#version += 1;
  }

  #applySrv(r: RawRecord, now: number, result: ApplyResult): void {
    const instance = key(r.name);
    if (!this.#ptr.has(instance)) return;
    const d = r.data as { port?: unknown; target?: unknown } | null;
    if (
      d === null ||
      typeof d !== 'object' ||
      typeof d.port !== 'number' ||
      typeof d.target !== 'string' ||
      d.target.length === 0 ||
      d.target.length > 1024
    ) {
      result.malformed += 1;
      return;
    }
    if (r.ttl === 0) {
      if (this.#srv.delete(instance)) this.#version += 1;
      return;
    }
    const before = this.#srv.get(instance);
    const host = d.target.replace(/\.$/, '');
    if (before?.host !== host || before.port !== d.port) this.#version += 1;
    this.#srv.set(instance, {
      host,
      port: d.port,
      askedAt: before?.askedAt ?? -Infinity,
      ...this.#timing(r.ttl, now),
    });
  }

  #applyTxt(r: RawRecord, now: number, result: ApplyResult): void {
    const instance = key(r.name);
    if (!this.#ptr.has(instance)) return;
    if (r.ttl === 0) {
      if (this.#txt.delete(instance)) this.#version += 1;
      return;
    }
    const entries = this.#decodeTxt(r.data);
    if (entries === undefined) {
      result.malformed += 1;
      return;
    }
    const before = this.#txt.get(instance);
    if (before === undefined || !sameEntries(before.entries, entries)) this.#version += 1;
    this.#txt.set(instance, { entries, ...this.#timing(r.ttl, now) });
  }

  /** RFC 6763 6.3-6.4: `key=value` strings, keys case-insensitive, first one wins; capped. */
  #decodeTxt(data: unknown): [string, string][] | undefined {
    const chunks = Array.isArray(data) ? data : [data];
    const out: [string, string][] = [];
    const seen = new Set<string>();
    for (const chunk of chunks) {
      if (out.length >= this.#limits.maxTxtEntries) break;
      let text: string;
      if (Buffer.isBuffer(chunk)) text = chunk.toString('utf8');
      else if (typeof chunk === 'string') text = chunk;
      else return undefined;
      if (text.length === 0) continue;
      const eq = text.indexOf('=');
      const k = eq === -1 ? text : text.slice(0, eq);
      // A TXT entry without a key is to be ignored (RFC 6763 6.4).
      if (k.length === 0 || seen.has(k.toLowerCase())) continue;
      seen.add(k.toLowerCase());
      out.push([k, eq === -1 ? '' : text.slice(eq + 1, eq + 1 + this.#limits.maxTxtValue)]);
    }
    return out;
  }

  #applyAddress(r: RawRecord, now: number, result: ApplyResult, flushed: Set<string>): void {
    const host = key(r.name);
    if (typeof r.data !== 'string' || r.data.length === 0 || r.data.length > 64) {
      result.malformed += 1;
      return;
    }
    if (![...this.#srv.values()].some((s) => key(s.host) === host)) return;
    let set = this.#addresses.get(host);
    if (r.ttl === 0) {
      if (set?.delete(r.data) === true) this.#version += 1;
      return;
    }
    if (set === undefined) {
      set = new Map();
      this.#addresses.set(host, set);
    }
    // The cache-flush bit: this response holds the whole set for the host (RFC 6762 10.2).
    if (r.flush && !flushed.has(host)) {
      flushed.add(host);
      for (const a of set.keys()) {
        if (a !== r.data) {
          set.delete(a);
          this.#version += 1;
        }
      }
    }
    if (!set.has(r.data)) {
      if (set.size >= this.#limits.maxAddressesPerHost) return;
      this.#version += 1;
    }
    set.set(r.data, this.#timing(r.ttl, now));
  }

  /**
   * Makes room by forgetting the oldest instance known only by its PTR (no
   * SRV): a flood of bare names must not keep real services out.
   */
  #evictIncomplete(): boolean {
    for (const instance of this.#ptr.keys()) {
      if (!this.#srv.has(instance)) {
        this.#ptr.delete(instance);
        this.#txt.delete(instance);
        return true;
      }
    }
    return false;
  }

  /**
   * Makes room by forgetting, of the instances not heard of for STALE_MS, the
   * one whose PTR record expires first: once a flood of made-up services ends,
   * a real service that announces itself gets in instead of finding the table
   * full for a day; while the flood goes on, new instances are capped.
   */
  #evictSoonestExpiring(now: number): boolean {
    let soonest: string | undefined;
    let expires = Infinity;
    for (const [instance, ptr] of this.#ptr) {
      if (now - ptr.seenAt >= STALE_MS && ptr.expires < expires) {
        soonest = instance;
        expires = ptr.expires;
      }
    }
    if (soonest === undefined) return false;
    this.#forget(soonest);
    return true;
  }

  #forget(instance: string): void {
    const listed = this.#ptr.has(instance) && this.#srv.has(instance);
    this.#ptr.delete(instance);
    this.#srv.delete(instance);
    this.#txt.delete(instance);
    if (listed) this.#version += 1;
    this.#dropOrphanHosts();
  }

  #dropOrphanHosts(): void {
    const hosts = new Set([...this.#srv.values()].map((s) => key(s.host)));
    for (const h of this.#addresses.keys()) if (!hosts.has(h)) this.#addresses.delete(h);
  }

  /** Drops every record whose TTL has run out by `now`. */
  expire(now: number): void {
    for (const [instance, p] of this.#ptr) if (p.expires <= now) this.#forget(instance);
    for (const [instance, s] of this.#srv) {
      if (s.expires <= now) {
        this.#srv.delete(instance);
        this.#version += 1;
      }
    }
    for (const [instance, t] of this.#txt) {
      if (t.expires <= now) {
        this.#txt.delete(instance);
        this.#version += 1;
      }
    }
    for (const set of this.#addresses.values()) {
      for (const [a, t] of set) {
        if (t.expires <= now) {
          set.delete(a);
          this.#version += 1;
        }
      }
    }
    this.#dropOrphanHosts();
  }

  /** When the next record runs out (ms), or undefined. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    const see = (t: Timed): void => {
      next = next === undefined ? t.expires : Math.min(next, t.expires);
    };
    for (const p of this.#ptr.values()) see(p);
    for (const s of this.#srv.values()) see(s);
    for (const t of this.#txt.values()) see(t);
    for (const set of this.#addresses.values()) for (const t of set.values()) see(t);
    return next;
  }

  /**
   * Questions to send now: SRV and TXT of instances known only by their PTR or
   * due for refresh, and addresses of hosts that have none or are due. Each
   * due record is asked for once per TTL.
   */
  questions(now: number): { name: string; type: 'SRV' | 'TXT' | 'A' }[] {
    const out: { name: string; type: 'SRV' | 'TXT' | 'A' }[] = [];
    for (const [instance, p] of this.#ptr) {
      if (out.length >= MAX_QUESTIONS) break;
      const srv = this.#srv.get(instance);
      if (srv === undefined) {
        if (now - p.askedAt >= ASK_AGAIN_MS) {
          p.askedAt = now;
          out.push({ name: p.fqdn, type: 'SRV' }, { name: p.fqdn, type: 'TXT' });
        }
        continue;
      }
      if (!srv.refreshed && srv.refreshAt <= now) {
        srv.refreshed = true;
        out.push({ name: p.fqdn, type: 'SRV' }, { name: p.fqdn, type: 'TXT' });
      }
      const set = this.#addresses.get(key(srv.host));
      const due = [...(set?.values() ?? [])].filter((t) => !t.refreshed && t.refreshAt <= now);
      const missing = (set === undefined || set.size === 0) && now - srv.askedAt >= ASK_AGAIN_MS;
      if (missing || due.length > 0) {
        for (const t of due) t.refreshed = true;
        if (missing) srv.askedAt = now;
        out.push({ name: srv.host, type: 'A' });
      }
    }
    return out;
  }

  /** Instances with a PTR and a SRV record, i.e. ones that can be listed. */
  instances(): Instance[] {
    const out: Instance[] = [];
    for (const [instance, p] of this.#ptr) {
      const srv = this.#srv.get(instance);
      if (srv === undefined) continue;
      const typeName = (this.#types.get(p.type) ?? p.type).replace(/\.local$/i, '');
      out.push({
        fqdn: p.fqdn,
        name: p.fqdn.slice(0, p.fqdn.length - p.type.length - 1),
        type: typeName,
        host: srv.host,
        port: srv.port,
        addresses: [...(this.#addresses.get(key(srv.host))?.keys() ?? [])].sort(),
        txt: this.#txt.get(instance)?.entries ?? [],
      });
    }
    return out;
  }

  /** How many instances are tracked (listed or not): bounded by maxInstances. */
  get size(): number {
    return this.#ptr.size;
  }
}

function sameEntries(a: [string, string][], b: [string, string][]): boolean {
  return a.length === b.length && a.every(([k, v], i) => b[i]?.[0] === k && b[i]?.[1] === v);
}
