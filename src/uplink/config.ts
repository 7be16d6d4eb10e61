// The uplink's configuration file (`--uplink-config FILE`, YAML), checked
// against UPLINK_CONFIG_SCHEMA into an UplinkConfig. Every mistake is an
// UplinkConfigError naming the field; secrets are referenced, never inlined in
// what is logged.
import path from 'node:path';
import { RECORD_OVERHEAD, type SyncPolicy } from '../spool/index.ts';
import { readBoundedFileSync } from '../util/bounded-file.ts';
import { UplinkConfigError } from './errors.ts';
import type { TopicRule } from './selection.ts';
import { checkFilter } from './topics.ts';
import { parseJsonOrYaml } from '../util/yaml.ts';
import { checkSchema, SchemaError } from '../util/schema-check.ts';
import { SIZE_PATTERN, UPLINK_CONFIG_SCHEMA } from './config-schema.ts';

/** Where a secret or a file's content comes from. */
export type ValueSource =
  | { value: string }
  | { file: string }
  | { secretKeyRef: { namespace: string; name: string; key: string } };

export interface CloudConfig {
  /** mqtt://, mqtts://, ws:// or wss:// */
  url: string;
  /** Default `edgebridge-<cluster>-<node>`. */
  clientId?: string;
  username?: ValueSource;
  password?: ValueSource;
  tls?: { ca?: ValueSource; cert?: ValueSource; key?: ValueSource; servername?: string };
  keepaliveSeconds: number;
  /** Most QoS 1 messages awaiting PUBACK (further bounded by the broker's Receive Maximum). */
  maxInFlight: number;
}

export interface SpoolConfig {
  /** Absolute, or relative to the state directory. */
  dir: string;
  maxBytes: number;
  onFull: 'block' | 'drop-oldest';
  sync: SyncPolicy;
}

export interface UplinkConfig {
  cloud: CloudConfig;
  cluster: string;
  /** Cloud topic prefix; `{cluster}` and `{node}` are expanded. */
  prefix: string;
  /** Follow `spec.uplink` of Discoveries for device data topics (default true). */
  discoveries: boolean;
  topics: TopicRule[];
  spool: SpoolConfig;
  downlink: { enabled: boolean; maxPayloadBytes: number };
  /** An external node broker to take messages from as an MQTT client (a bridge). */
  nodeBroker?: { url: string; clientId?: string; username?: ValueSource; password?: ValueSource };
}

/** The configuration is a few kilobytes. */
const MAX_CONFIG_BYTES = 1024 * 1024;
const SIZE = new RegExp(SIZE_PATTERN);
const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  ki: 1024,
  m: 1e6,
  mi: 1024 ** 2,
  g: 1e9,
  gi: 1024 ** 3,
};

function fail(field: string, what: string): never {
  throw new UplinkConfigError(`${field}: ${what}`);
}

/** A size the schema let through (a number or a size string) in bytes. */
function bytes(v: unknown, field: string): number {
  const m = typeof v === 'string' ? SIZE.exec(v) : null;
  const n =
    typeof v === 'number'
      ? v
      : m !== null
        ? Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? NaN)
        : NaN;
  if (!Number.isSafeInteger(n) || n < 1) fail(field, 'must be a size such as 268435456 or 256Mi');
  return n;
}

function url(text: string, field: string): string {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    fail(field, 'is not a URL');
  }
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(parsed.protocol)) {
    fail(field, `scheme ${parsed.protocol} is not one of mqtt:, mqtts:, ws:, wss:`);
  }
  if (parsed.password !== '') fail(field, 'must not carry a password; use password.secretKeyRef');
  return text;
}

/** The file as UPLINK_CONFIG_SCHEMA describes it, defaults filled in. */
interface UplinkDoc {
  cloud: Omit<CloudConfig, 'tls'> & { tls?: NonNullable<CloudConfig['tls']> };
  cluster: string;
  prefix: string;
  discoveries: boolean;
  topics: TopicRule[];
  spool: {
    dir: string;
    maxBytes: unknown;
    onFull: SpoolConfig['onFull'];
    sync: 'group' | 'always';
    groupIntervalMs?: number;
    groupMaxMessages?: number;
    groupWhenIdle?: boolean;
  };
  downlink: { enabled: boolean; maxPayloadBytes: unknown };
  nodeBroker?: NonNullable<UplinkConfig['nodeBroker']>;
}

/** Checks a parsed document; `stateDir` anchors a relative spool directory. */
export function uplinkConfigFrom(doc: unknown, stateDir: string): UplinkConfig {
  let o: UplinkDoc;
  try {
    o = checkSchema(UPLINK_CONFIG_SCHEMA, doc, '') as UplinkDoc;
  } catch (err) {
    if (err instanceof SchemaError) throw new UplinkConfigError(err.message);
    throw err;
  }
  const cloud: CloudConfig = { ...o.cloud, url: url(o.cloud.url, 'cloud.url') };
  const tls = cloud.tls;
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined))
    fail('cloud.tls', 'cert and key go together');
  o.topics.forEach((rule, i) => {
    try {
      checkFilter(rule.filter);
    } catch (err) {
      fail(`topics[${i}].filter`, (err as Error).message);
    }
  });
  const s = o.spool;
  const sync: SyncPolicy =
    s.sync === 'always'
      ? { sync: 'always' }
      : {
          sync: 'group',
          ...(s.groupIntervalMs === undefined ? {} : { intervalMs: s.groupIntervalMs }),
          ...(s.groupMaxMessages === undefined ? {} : { maxMessages: s.groupMaxMessages }),
          ...(s.groupWhenIdle === undefined ? {} : { whenIdle: s.groupWhenIdle }),
        };
  const config: UplinkConfig = {
    cloud,
    cluster: o.cluster,
    prefix: o.prefix,
    discoveries: o.discoveries,
    topics: o.topics,
    spool: {
      dir: path.resolve(stateDir, s.dir),
      maxBytes: bytes(s.maxBytes, 'spool.maxBytes'),
      onFull: s.onFull,
      sync,
    },
    downlink: {
      enabled: o.downlink.enabled,
      maxPayloadBytes: bytes(o.downlink.maxPayloadBytes, 'downlink.maxPayloadBytes'),
    },
  };
  if (o.nodeBroker !== undefined)
    config.nodeBroker = { ...o.nodeBroker, url: url(o.nodeBroker.url, 'nodeBroker.url') };
  return config;
}

/** A message id the uplink makes (randomUUID). */
const ID_BYTES = 36;
/** A device message's FIFO key, `<namespace>/<device>`: a namespace and a Device name at their longest. */
const DEVICE_KEY_BYTES = 63 + 1 + 253;
/** The longest topic MQTT carries (a topic rule's key is its topic). */
const MQTT_MAX_TOPIC_BYTES = 65535;

/**
 * What one message from a node broker that takes packets of up to
 * `maxPacketBytes` can account for in the spool: its topic and payload (at
 * most the packet), its id, its key, and the record's own overhead.
 */
export function spoolBytesForOneMessage(maxPacketBytes: number): number {
  const key = Math.max(DEVICE_KEY_BYTES, Math.min(maxPacketBytes, MQTT_MAX_TOPIC_BYTES));
  return maxPacketBytes + RECORD_OVERHEAD + ID_BYTES + key;
}

/**
 * Fails with UplinkConfigError naming `spool.maxBytes` and the minimum when the
 * spool could not hold one message of the node broker's largest packet (it
 * would refuse every such message for ever).
 */
export function checkSpoolRoom(config: UplinkConfig, maxPacketBytes: number): void {
  const need = spoolBytesForOneMessage(maxPacketBytes);
  if (config.spool.maxBytes < need) {
    fail(
      'spool.maxBytes',
      `${config.spool.maxBytes} is below what one message needs: at least ${need} bytes (the node broker's largest packet, ${maxPacketBytes} bytes, and the spool's record overhead)`,
    );
  }
}

/** Reads and checks the configuration file. */
export function loadUplinkConfig(file: string, stateDir: string): UplinkConfig {
  let text: string;
  try {
    text = readBoundedFileSync(file, { maxBytes: MAX_CONFIG_BYTES }).toString('utf8');
  } catch (err) {
    throw new UplinkConfigError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseJsonOrYaml(text, { file, maxAliasCount: 100 });
  } catch (err) {
    // A ParseError says where, never what: the line may hold a password.
    throw new UplinkConfigError((err as Error).message);
  }
  return uplinkConfigFrom(doc, stateDir);
}
