// A thin wrapper over multicast-dns (the transport bonjour-service is built
// on): one socket per interface, joined to 224.0.0.251:5353 on that
// interface's address only, sending queries and handing decoded responses on.
// Every error becomes a callback: a failed bind or a peer's malformed packet
// never throws (an 'error' event without a listener would end the process).
import { networkInterfaces } from 'node:os';
import multicastDns from 'multicast-dns';

export interface Question {
  name: string;
  type: 'PTR' | 'SRV' | 'TXT' | 'A';
}

export interface ResponsePacket {
  answers?: unknown;
  additionals?: unknown;
}

export interface MdnsSocketEvents {
  response(packet: ResponsePacket, from: string): void;
  /** A packet that did not decode (multicast-dns does not say from whom), or a query not sent. */
  warning(err: Error): void;
  /** The socket failed (bind refused, interface gone); it is closed. */
  failed(err: Error): void;
}

export interface MdnsSocket {
  query(questions: Question[]): void;
  /** Idempotent. */
  close(): Promise<void>;
}

/** Minimal shape of a multicast-dns instance, which ships no types. */
interface MulticastDns {
  on(event: 'response', fn: (packet: ResponsePacket, rinfo: { address: string }) => void): void;
  on(event: 'warning' | 'error', fn: (err: Error) => void): void;
  on(event: 'ready', fn: () => void): void;
  query(q: { questions: Question[] }, cb?: (err: Error | null) => void): void;
  destroy(cb?: () => void): void;
}

/** Interfaces that are containers' or overlays' links, not a segment that devices sit on. */
const VIRTUAL =
  /^(lo|docker|br-|veth|cni|flannel|cali|cilium|lxc|kube-|vxlan|tunl|tun|wg|virbr|weave|genev|nodelocaldns)/;

/** The default on a real node: every non-loopback IPv4 interface that is not a container or overlay link. */
export function defaultInterfaces(
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): string[] {
  return Object.entries(interfaces)
    .filter(
      ([name, addrs]) =>
        !VIRTUAL.test(name) && (addrs ?? []).some((a) => a.family === 'IPv4' && !a.internal),
    )
    .map(([name]) => name);
}

/** Opens a socket on the interface with IPv4 `address`; resolves once it is bound. */
export function openMdnsSocket(address: string, events: MdnsSocketEvents): Promise<MdnsSocket> {
  // `interface` alone still sends on the default route's interface; `bind` too keeps it on this one.
  const mdns = (multicastDns as (opts: object) => MulticastDns)({
    interface: address,
    bind: '0.0.0.0',
    loopback: false,
  });
  let closed = false;
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      if (closed) {
        resolve();
        return;
      }
      closed = true;
      mdns.destroy(() => resolve());
    });
  return new Promise((resolve, reject) => {
    let ready = false;
    mdns.on('response', (packet, rinfo) => {
      if (!closed) events.response(packet, rinfo.address);
    });
    mdns.on('warning', (err) => {
      if (!closed) events.warning(err);
    });
    mdns.on('error', (err) => {
      void close();
      if (!ready) reject(err);
      else events.failed(err);
    });
    mdns.on('ready', () => {
      ready = true;
      resolve({
        query(questions) {
          if (closed || questions.length === 0) return;
          mdns.query({ questions }, (err) => {
            if (err !== null && err !== undefined && !closed) events.warning(err);
          });
        },
        close,
      });
    });
  });
}
