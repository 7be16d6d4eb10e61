// The cameras WS-Discovery has told us of, one record per endpoint: what a
// Hello or a ProbeMatch said, where it came from and when. Pure (the clock is
// passed in); bounded in size.
import { isIpv4 } from './ipv4.ts';
import { isVideoTransmitter, LIMITS, type WsdEndpoint } from './wsd-message.ts';

/** Cameras remembered at most; a new one beyond this is refused, so memory stays bounded. */
export const MAX_CAMERAS = 4096;

/** One camera as WS-Discovery describes it. */
export interface CameraRecord {
  /** The endpoint reference as sent, normalised to `urn:uuid:<lower-case uuid>` when it is a UUID. */
  endpoint: string;
  /** The UUID without `urn:uuid:` (lower case), or the endpoint as sent if it is not a UUID. */
  uuid: string;
  types: string[];
  scopes: string[];
  /** Every XAddr as sent (userinfo included: strip it before showing one). */
  xaddrs: string[];
  /** The device service URL used: an http(s) XAddr with an IPv4 host, the sender's own if it lists it. */
  serviceUrl: URL;
  /** XAddrs with an IPv6 or a host-name host, kept for workloads that can use them. */
  otherXaddrs: URL[];
  /** The IPv4 address the datagram came from. */
  from: string;
  /** Milliseconds (the caller's clock) of the last Hello or ProbeMatch. */
  lastSeen: number;
}

/** Why an endpoint is not a camera we can list. */
export type Refusal = 'not-a-camera' | 'no-usable-xaddr' | 'table-full';

const UUID = /^(?:urn:uuid:|uuid:)?([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})$/i;

/** `urn:uuid:...` in lower case for a UUID in any of its spellings; anything else as it is. */
export function normalEndpoint(address: string): { endpoint: string; uuid: string } {
  const m = UUID.exec(address.trim());
  const uuid = m?.[1]?.toLowerCase();
  return uuid === undefined
    ? { endpoint: address, uuid: address }
    : { endpoint: `urn:uuid:${uuid}`, uuid };
}

export class CameraTable {
  readonly #cameras = new Map<string, CameraRecord>();
  /** Bumped on every change that a device list shows. */
  version = 0;

  /** Records a Hello or a ProbeMatch from `from`; says why not when it is not a usable camera. */
  seen(
    e: WsdEndpoint,
    from: string,
    now: number,
  ): { ok: true; added: boolean } | { ok: false; refusal: Refusal } {
    if (!isVideoTransmitter(e.types)) return { ok: false, refusal: 'not-a-camera' };
    const urls = e.xaddrs.flatMap((x) => {
      try {
        const u = new URL(x);
        return u.protocol === 'http:' || u.protocol === 'https:' ? [u] : [];
      } catch {
        return [];
      }
    });
    const v4 = urls.filter((u) => isIpv4(u.hostname));
    const serviceUrl = v4.find((u) => u.hostname === from) ?? v4[0];
    if (serviceUrl === undefined) return { ok: false, refusal: 'no-usable-xaddr' };
    const { endpoint, uuid } = normalEndpoint(e.address);
    const before = this.#cameras.get(endpoint);
    if (before === undefined && this.#cameras.size >= MAX_CAMERAS)
      return { ok: false, refusal: 'table-full' };
    const record: CameraRecord = {
      endpoint,
      uuid,
      types: e.types,
      scopes: e.scopes,
      xaddrs: e.xaddrs,
      serviceUrl,
      otherXaddrs: urls.filter((u) => !isIpv4(u.hostname)).slice(0, LIMITS.xaddrs),
      from,
      lastSeen: now,
    };
    if (before === undefined || !sameListing(before, record)) this.version++;
    this.#cameras.set(endpoint, record);
    return { ok: true, added: before === undefined };
  }

  /** A Bye: the camera is gone at once (the agent applies the grace period). */
  bye(address: string): boolean {
    const gone = this.#cameras.delete(normalEndpoint(address).endpoint);
    if (gone) this.version++;
    return gone;
  }

  /** Forgets cameras not seen since `before`; returns how many. */
  expire(before: number): number {
    let n = 0;
    for (const [key, c] of this.#cameras) {
      if (c.lastSeen < before) {
        this.#cameras.delete(key);
        n++;
      }
    }
    if (n > 0) this.version++;
    return n;
  }

  /** The oldest lastSeen, to know when the next expiry is due. */
  oldest(): number | undefined {
    let oldest: number | undefined;
    for (const c of this.#cameras.values())
      if (oldest === undefined || c.lastSeen < oldest) oldest = c.lastSeen;
    return oldest;
  }

  cameras(): CameraRecord[] {
    return [...this.#cameras.values()];
  }
}

/** Whether two records give the same device (lastSeen aside). */
function sameListing(a: CameraRecord, b: CameraRecord): boolean {
  return (
    a.serviceUrl.href === b.serviceUrl.href &&
    a.from === b.from &&
    a.scopes.join(' ') === b.scopes.join(' ') &&
    a.types.join(' ') === b.types.join(' ') &&
    a.xaddrs.join(' ') === b.xaddrs.join(' ')
  );
}
