// The uplink's configuration file (`--uplink-config FILE`, YAML), checked field
// by field into an UplinkConfig. Every mistake is an UplinkConfigError naming
// the field; secrets are referenced, never inlined in what is logged.
import path from 'node:path';
import { RECORD_OVERHEAD, type SyncPolicy } from '../../spool/index.ts';
import { readBoundedFileSync } from '../../util/bounded-file.ts';
import { UplinkConfigError } from './errors.ts';
import type { TopicRule } from './selection.ts';
import { checkFilter } from './topics.ts';
import { parseJsonOrYaml } from '../../util/yaml.ts';

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
const SIZE = /^(\d+)\s*(|k|ki|m|mi|g|gi)b?$/i;
const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  ki: 1024,
  m: 1e6,
  mi: 1024 ** 2,
  g: 1e9,
  gi: 1024 ** 3,
};

type Obj = Record<string, unknown>;

function fail(field: string, what: string): never {
  throw new UplinkConfigError(`${field}: ${what}`);
}

function obj(v: unknown, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'must be a mapping');
  return v as Obj;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v === '') fail(field, 'must be a non-empty string');
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') fail(field, 'must be true or false');
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(field, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

function bytes(v: unknown, field: string): number {
  if (typeof v === 'number') return int(v, field, 1, Number.MAX_SAFE_INTEGER);
  const m = typeof v === 'string' ? SIZE.exec(v.trim()) : null;
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  if (m === null || unit === undefined) fail(field, 'must be a size such as 268435456 or 256Mi');
  return int(Number(m[1]) * unit, field, 1, Number.MAX_SAFE_INTEGER);
}

function only(o: Obj, field: string, keys: string[]): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) fail(`${field}.${k}`, `unknown field (known: ${keys.join(', ')})`);
  }
}

function source(v: unknown, field: string): ValueSource {
  const o = obj(v, field);
  only(o, field, ['value', 'file', 'secretKeyRef']);
  const given = Object.keys(o);
  if (given.length !== 1) fail(field, 'needs exactly one of value, file, secretKeyRef');
  if (o.value !== undefined) return { value: str(o.value, `${field}.value`) };
  if (o.file !== undefined) return { file: str(o.file, `${field}.file`) };
  const ref = obj(o.secretKeyRef, `${field}.secretKeyRef`);
  only(ref, `${field}.secretKeyRef`, ['namespace', 'name', 'key']);
  return {
    secretKeyRef: {
      namespace: str(ref.namespace, `${field}.secretKeyRef.namespace`),
      name: str(ref.name, `${field}.secretKeyRef.name`),
      key: str(ref.key, `${field}.secretKeyRef.key`),
    },
  };
}

function optionalSource(o: Obj, key: string, field: string): { [k: string]: ValueSource } {
  return o[key] === undefined ? {} : { [key]: source(o[key], `${field}.${key}`) };
}

function url(v: unknown, field: string): string {
  const text = str(v, field);
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

/** Checks a parsed document; `stateDir` anchors a relative spool directory. */
export function uplinkConfigFrom(doc: unknown, stateDir: string): UplinkConfig {
  const o = obj(doc, 'uplink');
  only(o, 'uplink', [
    'cloud',
    'cluster',
    'prefix',
    'discoveries',
    'topics',
    'spool',
    'downlink',
    'nodeBroker',
  ]);
  const c = obj(o.cloud, 'cloud');
  only(c, 'cloud', [
    'url',
    'clientId',
    'username',
    'password',
    'tls',
    'keepaliveSeconds',
    'maxInFlight',
  ]);
  const cloud: CloudConfig = {
    url: url(c.url, 'cloud.url'),
    keepaliveSeconds:
      c.keepaliveSeconds === undefined
        ? 30
        : int(c.keepaliveSeconds, 'cloud.keepaliveSeconds', 1, 65535),
    maxInFlight:
      c.maxInFlight === undefined ? 1000 : int(c.maxInFlight, 'cloud.maxInFlight', 1, 65535),
    ...(c.clientId === undefined ? {} : { clientId: str(c.clientId, 'cloud.clientId') }),
    ...optionalSource(c, 'username', 'cloud'),
    ...optionalSource(c, 'password', 'cloud'),
  };
  if (c.tls !== undefined) {
    const t = obj(c.tls, 'cloud.tls');
    only(t, 'cloud.tls', ['ca', 'cert', 'key', 'servername']);
    cloud.tls = {
      ...optionalSource(t, 'ca', 'cloud.tls'),
      ...optionalSource(t, 'cert', 'cloud.tls'),
      ...optionalSource(t, 'key', 'cloud.tls'),
      ...(t.servername === undefined
        ? {}
        : { servername: str(t.servername, 'cloud.tls.servername') }),
    };
    if ((cloud.tls.cert === undefined) !== (cloud.tls.key === undefined)) {
      fail('cloud.tls', 'cert and key go together');
    }
  }

  const cluster = str(o.cluster, 'cluster');
  if (/[#+/]/.test(cluster)) fail('cluster', "must not contain '/', '+' or '#'");
  const prefix = o.prefix === undefined ? 'edgebridge/{cluster}/{node}' : str(o.prefix, 'prefix');
  if (/[#+]/.test(prefix)) fail('prefix', "must not contain wildcards '+' or '#'");

  if (o.topics !== undefined && !Array.isArray(o.topics)) fail('topics', 'must be a list');
  const topics = ((o.topics as unknown[] | undefined) ?? []).map((t, i): TopicRule => {
    const field = `topics[${i}]`;
    const r = obj(t, field);
    only(r, field, ['filter', 'priority', 'ttlSeconds']);
    const filter = str(r.filter, `${field}.filter`);
    try {
      checkFilter(filter);
    } catch (err) {
      fail(`${field}.filter`, (err as Error).message);
    }
    return {
      filter,
      ...(r.priority === undefined ? {} : { priority: int(r.priority, `${field}.priority`, 0, 9) }),
      ...(r.ttlSeconds === undefined
        ? {}
        : { ttlSeconds: int(r.ttlSeconds, `${field}.ttlSeconds`, 1, 2592000) }),
    };
  });

  const s = o.spool === undefined ? {} : obj(o.spool, 'spool');
  only(s, 'spool', [
    'dir',
    'maxBytes',
    'onFull',
    'sync',
    'groupIntervalMs',
    'groupMaxMessages',
    'groupWhenIdle',
  ]);
  const dir = s.dir === undefined ? 'uplink-spool' : str(s.dir, 'spool.dir');
  const onFull = s.onFull ?? 'block';
  if (onFull !== 'block' && onFull !== 'drop-oldest')
    fail('spool.onFull', "must be 'block' or 'drop-oldest'");
  const syncName = s.sync ?? 'group';
  if (syncName !== 'group' && syncName !== 'always')
    fail('spool.sync', "must be 'group' or 'always'");
  const sync: SyncPolicy =
    syncName === 'always'
      ? { sync: 'always' }
      : {
          sync: 'group',
          ...(s.groupIntervalMs === undefined
            ? {}
            : { intervalMs: int(s.groupIntervalMs, 'spool.groupIntervalMs', 0, 10000) }),
          ...(s.groupMaxMessages === undefined
            ? {}
            : { maxMessages: int(s.groupMaxMessages, 'spool.groupMaxMessages', 1, 1_000_000) }),
          ...(s.groupWhenIdle === undefined
            ? {}
            : { whenIdle: bool(s.groupWhenIdle, 'spool.groupWhenIdle') }),
        };
  const spool: SpoolConfig = {
    dir: path.resolve(stateDir, dir),
    maxBytes: s.maxBytes === undefined ? 256 * 1024 ** 2 : bytes(s.maxBytes, 'spool.maxBytes'),
    onFull,
    sync,
  };

  const d = o.downlink === undefined ? {} : obj(o.downlink, 'downlink');
  only(d, 'downlink', ['enabled', 'maxPayloadBytes']);
  if (d.enabled !== undefined && typeof d.enabled !== 'boolean')
    fail('downlink.enabled', 'must be true or false');
  const downlink = {
    enabled: d.enabled === true,
    maxPayloadBytes:
      d.maxPayloadBytes === undefined
        ? 65536
        : bytes(d.maxPayloadBytes, 'downlink.maxPayloadBytes'),
  };
  if (o.discoveries !== undefined && typeof o.discoveries !== 'boolean') {
    fail('discoveries', 'must be true or false');
  }

  const config: UplinkConfig = {
    cloud,
    cluster,
    prefix,
    discoveries: o.discoveries !== false,
    topics,
    spool,
    downlink,
  };
  if (o.nodeBroker !== undefined) {
    const n = obj(o.nodeBroker, 'nodeBroker');
    only(n, 'nodeBroker', ['url', 'clientId', 'username', 'password']);
    config.nodeBroker = {
      url: url(n.url, 'nodeBroker.url'),
      ...(n.clientId === undefined ? {} : { clientId: str(n.clientId, 'nodeBroker.clientId') }),
      ...optionalSource(n, 'username', 'nodeBroker'),
      ...optionalSource(n, 'password', 'nodeBroker'),
    };
  }
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
