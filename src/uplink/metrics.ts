// The uplink's metrics: what the spool and the cloud connection report, read
// at each scrape. They live beside the uplink so that src/metrics.ts does not
// import up the tree.
import type { Gauge as GaugeType, Registry } from 'prom-client';
import { Counter, Gauge } from '../util/prom-classes.ts';
import type { UplinkStats } from './index.ts';

/** Set to 1 (by spool error code) when an uplink is configured but its spool cannot be opened. */
export function uplinkOffGauge(registry: Registry): GaugeType<'code'> {
  return new Gauge({
    name: 'edgebridge_uplink_off',
    help: 'Set to 1 when an uplink is configured but its spool cannot be opened (the agent runs on without it), by the spool error code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
}

/**
 * Spool and uplink figures, read from `stats` at each scrape: spool depth,
 * bytes and message counters, uplink connection state and counters.
 */
export function observeUplink(registry: Registry, stats: () => UplinkStats): void {
  const registers = [registry];
  const gauge = (name: string, help: string, read: (s: UplinkStats) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(stats()));
      },
    });
  };
  // Counters kept by the uplink itself; each scrape reports their current totals.
  const counter = (name: string, help: string, read: (s: UplinkStats) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read(stats()));
      },
    });
  };
  gauge(
    'edgebridge_spool_depth',
    'Messages in the spool not yet acknowledged by the cloud broker',
    (s) => s.spool.depth,
  );
  gauge(
    'edgebridge_spool_bytes',
    'Accounted bytes of the messages in the spool',
    (s) => s.spool.bytes,
  );
  gauge(
    'edgebridge_spool_blocked_producers',
    'Producers waiting for spool space (onFull: block)',
    (s) => s.spool.blockedProducers,
  );
  counter(
    'edgebridge_spool_sent_total',
    'Spooled messages acknowledged by the cloud broker',
    (s) => s.spool.sent,
  );
  counter(
    'edgebridge_spool_dropped_total',
    'Spooled messages dropped to make room (onFull: drop-oldest)',
    (s) => s.spool.dropped,
  );
  counter(
    'edgebridge_spool_expired_total',
    'Spooled messages whose time-to-live passed undelivered',
    (s) => s.spool.expired,
  );
  counter(
    'edgebridge_spool_corrupt_total',
    'Spool records that failed their checksum and were skipped',
    (s) => s.spool.corrupt,
  );
  counter(
    'edgebridge_spool_damaged_files_total',
    'Damaged spool files moved aside at start (a fresh spool was started)',
    (s) => s.spool.damagedFiles,
  );
  counter(
    'edgebridge_spool_salvaged_total',
    'Records copied from a damaged spool file into the fresh one',
    (s) => s.spool.salvaged,
  );
  counter(
    'edgebridge_spool_lost_total',
    'Records of a damaged spool file known to be lost',
    (s) => s.spool.lost,
  );
  gauge('edgebridge_uplink_connected', '1 while connected to the cloud broker', (s) =>
    s.sender.connected ? 1 : 0,
  );
  counter(
    'edgebridge_uplink_accepted_total',
    'Node broker messages stored for the uplink',
    (s) => s.uplink.accepted,
  );
  counter(
    'edgebridge_uplink_refused_total',
    'Node broker messages the spool refused (producer told)',
    (s) => s.uplink.refused,
  );
  counter(
    'edgebridge_uplink_published_total',
    'Messages the cloud broker acknowledged',
    (s) => s.sender.published,
  );
  counter(
    'edgebridge_uplink_resent_total',
    'Messages sent again after a lost cloud connection',
    (s) => s.sender.resent,
  );
  counter(
    'edgebridge_uplink_rejected_total',
    'Messages the cloud broker refused for good (dropped)',
    (s) => s.sender.rejected,
  );
  counter(
    'edgebridge_downlink_forwarded_total',
    'Cloud commands forwarded to the node broker',
    (s) => s.downlink.forwarded,
  );
  counter(
    'edgebridge_downlink_rejected_total',
    'Cloud commands dropped as invalid',
    (s) => s.downlink.rejected,
  );
}
