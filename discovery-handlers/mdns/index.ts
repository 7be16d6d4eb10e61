import type { DiscoveredDevice, DiscoveryHandler, HandlerContext } from '../handler.ts';
import { interfaceAddresses } from '../interface-address.ts';
import { Wakeup } from '../wakeup.ts';
import { parseMdnsDetails, type MdnsDetails } from './details.ts';
import { instanceFilter, toDevice } from './device.ts';
import {
  defaultInterfaces,
  openMdnsSocket,
  type MdnsSocket,
  type Question,
} from './mdns-socket.ts';
import { DEFAULT_LIMITS, RecordCache, WILDCARD } from './record-cache.ts';
import { PeerLog } from './peer-log.ts';

/**
 * The first list is complete once answers have stopped for QUIET_MS, at least
 * SETTLE_MS after the first query (types learnt through the wildcard need a
 * second round) and at most MAX_SETTLE_MS after it.
 */
const SETTLE_MS = 2000;
const QUIET_MS = 500;
const MAX_SETTLE_MS = 5000;
/**
 * Service types are asked again this soon after the first query: a responder
 * that has just announced a record does not multicast it again within a
 * second (RFC 6762 6), so the first answer may not come.
 */
const SECOND_QUERY_MS = 1000;
/** Then at least this often, whatever intervalSeconds says: SRV and A records live 120 s at avahi. */
const MAX_QUERY_PERIOD_MS = 60_000;
/** A burst of responses (a host announcing ten services) makes one list, not ten. */
const BATCH_MS = 50;

/**
 * mDNS / DNS-SD services on the node's links (shared: every node on a segment
 * sees them). Lists each instance that has a SRV record, with its TXT entries
 * as properties; a goodbye or an expired TTL removes it (the agent applies the
 * grace period).
 */
export const mdnsHandler: DiscoveryHandler<MdnsDetails> = {
  name: 'mdns',
  shared: true,
  validate: parseMdnsDetails,
  discover: browse,
};

async function* browse(
  details: MdnsDetails,
  ctx: HandlerContext,
): AsyncGenerator<DiscoveredDevice[]> {
  const names = details.interfaces ?? defaultInterfaces();
  const addresses = interfaceAddresses(names, 'EDGEBRIDGE_MDNS_INTERFACE');
  const cache = new RecordCache(
    details.serviceTypes.map((t) => `${t}.local`),
    { ...DEFAULT_LIMITS, maxInstances: details.maxInstances },
  );
  const selected = instanceFilter(details);
  const peers = new PeerLog(ctx.log);
  const wakeup = new Wakeup();
  const sockets: MdnsSocket[] = [];
  let failure: Error | undefined;
  let lastNews = 0;
  const ask = (questions: Question[]): void => {
    for (const s of sockets) s.query(questions);
  };

  try {
    for (const address of addresses) {
      sockets.push(
        await openMdnsSocket(address, {
          response(packet, from) {
            const records = [packet.answers, packet.additionals].flatMap((r) =>
              Array.isArray(r) ? (r as unknown[]) : [],
            );
            const before = cache.version;
            const result = cache.apply(records, Date.now());
            if (cache.version !== before || result.newTypes.length > 0) lastNews = Date.now();
            if (result.malformed > 0)
              peers.warn(from, { records: result.malformed }, 'malformed DNS-SD records ignored');
            if (result.capped > 0)
              peers.warn(
                'cap',
                { maxInstances: details.maxInstances },
                'instance cap reached; further instances ignored',
              );
            if (result.newTypes.length > 0)
              ask(result.newTypes.map((name) => ({ name, type: 'PTR' })));
            wakeup.notify();
          },
          warning(err) {
            peers.warn(
              'mdns',
              { err: err.message.slice(0, 200) },
              'undecodable mDNS packet ignored or query not sent',
            );
          },
          failed(err) {
            failure = err;
            wakeup.notify();
          },
        }),
      );
    }
    ctx.log.info({ interfaces: names, serviceTypes: details.serviceTypes }, 'mDNS browsing');
    const browseTypes = (): void =>
      ask(
        details.serviceTypes.length === 0
          ? [
              { name: WILDCARD, type: 'PTR' },
              ...cache.types().map((name) => ({ name, type: 'PTR' as const })),
            ]
          : cache.types().map((name) => ({ name, type: 'PTR' })),
      );
    const start = Date.now();
    browseTypes();
    let secondQuery = start + SECOND_QUERY_MS;
    const period = Math.min(ctx.intervalSeconds * 1000, MAX_QUERY_PERIOD_MS);
    let nextQuery = start + period;
    let listedVersion = -1;
    let first = true;

    while (!ctx.signal.aborted) {
      const now = Date.now();
      if (failure !== undefined) throw failure;
      cache.expire(now);
      if (now >= secondQuery) {
        secondQuery = Infinity;
        browseTypes();
      }
      if (now >= nextQuery) {
        nextQuery = now + period;
        browseTypes();
      }
      ask(cache.questions(now));
      const settled =
        !first ||
        (now >= start + SETTLE_MS && now - lastNews >= QUIET_MS) ||
        now >= start + MAX_SETTLE_MS;
      if (settled && (first || cache.version !== listedVersion)) {
        first = false;
        listedVersion = cache.version;
        yield cache.instances().filter(selected).map(toDevice);
        continue;
      }
      const wakeAt = Math.min(
        settled
          ? Infinity
          : Math.min(Math.max(start + SETTLE_MS, lastNews + QUIET_MS), start + MAX_SETTLE_MS),
        secondQuery,
        nextQuery,
        cache.nextExpiry() ?? Infinity,
      );
      await wakeup.wait(Math.max(wakeAt - Date.now(), 0), ctx.signal);
      // Let the rest of a burst arrive before listing.
      if (!ctx.signal.aborted) await new Promise((r) => setTimeout(r, BATCH_MS).unref());
    }
  } finally {
    await Promise.all(sockets.map((s) => s.close()));
  }
}
