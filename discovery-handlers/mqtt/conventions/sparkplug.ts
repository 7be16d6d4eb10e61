// Sparkplug B 3.0 (Eclipse Sparkplug specification 3.0.0): edge nodes and
// their devices on `<prefix>/<group>/<type>/<edge_node>[/<device>]`, with
// protobuf payloads decoded by protobufjs from the spec's schema. BIRTHs
// announce (and bind metric aliases), DEATHs withdraw, DATA carries readings
// by alias or name. An NDEATH is the node's MQTT will, published by the broker
// whenever that old session ends: only one whose bdSeq matches the current
// NBIRTH's counts. DATA from a node whose birth we have not seen (births are
// not retained) gets a rebirth request. `<prefix>/STATE/<host>` is not ours.
import protobuf from 'protobufjs';
import {
  type CommandRoute,
  type Convention,
  type ConventionUpdate,
  type SensorDevice,
} from '../convention.ts';
import { DEFAULT_MAX_DEVICES, MAX_VALUES_PER_DEVICE, type ConventionOptions } from './options.ts';
import { isTopicSafe, payloadError } from './payload.ts';
import { DataType, metricValue, toMetricFields, type MetricObject } from './sparkplug-values.ts';
import { SPARKPLUG_B_PROTO } from './sparkplug-b-proto.ts';

const Payload = protobuf
  .parse(SPARKPLUG_B_PROTO, { keepCase: true })
  .root.lookupType('org.eclipse.tahu.protobuf.Payload');
/** Templates and data sets make births far larger than other conventions' announcements. */
const MAX_SPARKPLUG_PAYLOAD_BYTES = 1024 * 1024;
const BD_SEQ = 'bdSeq';
/** Metrics every edge node has; a node with nothing else is a gateway, not a device of its own. */
const NODE_CONTROL = 'Node Control/';
const REBIRTH = 'Node Control/Rebirth';
/** A node that keeps sending DATA without a birth is asked again this often, not on every message. */
const REBIRTH_EVERY_MS = 30_000;

interface MetricInfo {
  name: string;
  datatype: number;
}

interface Metrics {
  byName: Map<string, MetricInfo>;
  byAlias: Map<string, MetricInfo>;
  /** By command name: the metric name as a command topic can carry it. */
  byCommand: Map<string, MetricInfo>;
}

interface EdgeNode {
  group: string;
  node: string;
  /** The bdSeq of the NBIRTH in force (undefined: the birth carried none). */
  bdSeq: string | undefined;
  metrics: Metrics;
  /** Whether the node has metrics of its own and so is a device too. */
  isDevice: boolean;
  /** Its devices born since its NBIRTH, by device id. */
  devices: Map<string, Metrics>;
}

interface DecodedPayload {
  timestamp?: string;
  metrics?: MetricObject[];
}

export class SparkplugConvention implements Convention {
  readonly name = 'sparkplug' as const;
  readonly #prefix: string;
  readonly #maxDevices: number;
  /** By `group/node`. */
  readonly #nodes = new Map<string, EdgeNode>();
  /** Nodes and devices tracked, against the cap. */
  #count = 0;
  /** When each node not born to us was last asked for a rebirth. */
  readonly #rebirthAsked = new Map<string, number>();

  constructor(options: ConventionOptions) {
    this.#prefix = options.prefix;
    this.#maxDevices = options.maxDevices ?? DEFAULT_MAX_DEVICES;
  }

  filters(): string[] {
    return [`${this.#prefix}/#`];
  }

  handle(topic: string, payload: Buffer): ConventionUpdate[] {
    if (!topic.startsWith(`${this.#prefix}/`)) return [];
    const levels = topic.slice(this.#prefix.length + 1).split('/');
    const [group, type, node, device] = levels;
    if (group === undefined || type === undefined || node === undefined || levels.length > 4)
      return [];
    if (group === 'STATE' || ![group, node, device ?? 'x'].every((l) => isTopicSafe(l, false)))
      return [];
    const nodeKey = `${group}/${node}`;
    switch (type) {
      case 'NBIRTH':
        return device === undefined ? this.#nodeBirth(group, node, topic, payload) : [];
      case 'NDEATH':
        return device === undefined ? this.#nodeDeath(nodeKey, topic, payload) : [];
      case 'NDATA':
        return device === undefined ? this.#nodeData(nodeKey, topic, payload) : [];
      case 'DBIRTH':
        return device === undefined ? [] : this.#deviceBirth(nodeKey, device, topic, payload);
      case 'DDEATH':
        return device === undefined ? [] : this.#deviceDeath(nodeKey, device, topic, payload);
      case 'DDATA':
        return device === undefined ? [] : this.#deviceData(nodeKey, device, topic, payload);
      default:
        // NCMD/DCMD are host -> node (ours among them); anything else is not Sparkplug B.
        return [];
    }
  }

  /**
   * NCMD for the edge node's own metrics, DCMD for a device's, by their
   * command names (see commandName); the pod's payload is a JSON value of the
   * metric's datatype. A payload that is not gives undefined, as an unknown
   * name does: the handler drops the command with one log line.
   */
  command(key: string, name: string, payload: Buffer): CommandRoute | undefined {
    const [group, node, device, extra] = key.split('/');
    if (group === undefined || node === undefined || extra !== undefined) return undefined;
    const edge = this.#nodes.get(`${group}/${node}`);
    if (edge === undefined) return undefined;
    const metrics =
      device === undefined ? (edge.isDevice ? edge.metrics : undefined) : edge.devices.get(device);
    const metric = metrics?.byCommand.get(name);
    if (metric === undefined) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
    const fields = toMetricFields(metric.datatype, value);
    if (fields === undefined) return undefined;
    const now = Date.now();
    const message = Payload.fromObject({
      timestamp: now,
      metrics: [{ name: metric.name, timestamp: now, datatype: metric.datatype, ...fields }],
    });
    const topic =
      device === undefined
        ? `${this.#prefix}/${group}/NCMD/${node}`
        : `${this.#prefix}/${group}/DCMD/${node}/${device}`;
    return { topic, payload: Buffer.from(Payload.encode(message).finish()), retain: false };
  }

  #nodeBirth(group: string, node: string, topic: string, payload: Buffer): ConventionUpdate[] {
    const decoded = decode(topic, payload);
    const nodeKey = `${group}/${node}`;
    const old = this.#nodes.get(nodeKey);
    const metrics = birthMetrics(decoded, topic);
    const bdSeq = metrics.byName.get(BD_SEQ) === undefined ? undefined : bdSeqOf(decoded);
    const isDevice = [...metrics.byName.keys()].some(
      (n) => n !== BD_SEQ && !n.startsWith(NODE_CONTROL),
    );
    const count =
      this.#count - (old === undefined ? -1 : old.isDevice ? 1 : 0) + (isDevice ? 1 : 0);
    if (count > this.#maxDevices) {
      throw payloadError(
        'sparkplug',
        topic,
        `over the cap of ${this.#maxDevices} Sparkplug nodes and devices`,
      );
    }
    this.#count = count;
    // A rebirth keeps the node's devices: their DBIRTHs follow and rebind their aliases.
    const devices = old?.devices ?? new Map<string, Metrics>();
    this.#nodes.set(nodeKey, { group, node, bdSeq, metrics, isDevice, devices });
    this.#rebirthAsked.delete(nodeKey);
    const updates: ConventionUpdate[] = old?.isDevice === true && !isDevice ? gone(nodeKey) : [];
    if (!isDevice) return updates;
    const device = sensorDevice(
      nodeKey,
      node,
      { group, edge_node: node },
      `${this.#prefix}/${group}/NDATA/${node}`,
      metrics,
    );
    updates.push({ kind: 'device', device }, { kind: 'availability', key: nodeKey, online: true });
    updates.push(...reading(nodeKey, decoded, metrics));
    return updates;
  }

  #nodeDeath(nodeKey: string, topic: string, payload: Buffer): ConventionUpdate[] {
    const edge = this.#nodes.get(nodeKey);
    if (edge === undefined) return [];
    const bdSeq = bdSeqOf(decode(topic, payload));
    // The will of an older session, delivered after the node was born again: not this session's death.
    if (edge.bdSeq !== undefined && bdSeq !== undefined && bdSeq !== edge.bdSeq) return [];
    this.#nodes.delete(nodeKey);
    this.#rebirthAsked.delete(nodeKey);
    return this.#dropNode(nodeKey, edge);
  }

  /** Offline and withdrawn: the node (if it is a device) and every device of it; the grace period keeps them through a quick rebirth. */
  #dropNode(nodeKey: string, edge: EdgeNode): ConventionUpdate[] {
    const updates: ConventionUpdate[] = [];
    for (const device of edge.devices.keys()) updates.push(...gone(`${nodeKey}/${device}`));
    if (edge.isDevice) updates.push(...gone(nodeKey));
    this.#count -= edge.devices.size + 1 + (edge.isDevice ? 1 : 0);
    return updates;
  }

  #nodeData(nodeKey: string, topic: string, payload: Buffer): ConventionUpdate[] {
    const decoded = decode(topic, payload);
    const edge = this.#nodes.get(nodeKey);
    if (edge === undefined) return this.#askRebirth(nodeKey);
    return edge.isDevice ? reading(nodeKey, decoded, edge.metrics) : [];
  }

  /**
   * An NCMD `Node Control/Rebirth` = true, as the spec has a host send when
   * it gets messages from a node whose birth it has not seen (after this
   * agent starts, say: births are not retained). At most once per
   * REBIRTH_EVERY_MS per node, and for at most maxDevices nodes at a time.
   */
  #askRebirth(nodeKey: string): ConventionUpdate[] {
    const now = Date.now();
    const last = this.#rebirthAsked.get(nodeKey);
    if (last !== undefined && now - last < REBIRTH_EVERY_MS) return [];
    if (last === undefined && this.#rebirthAsked.size >= this.#maxDevices) return [];
    this.#rebirthAsked.set(nodeKey, now);
    const [group, node] = nodeKey.split('/') as [string, string];
    const message = Payload.fromObject({
      timestamp: now,
      metrics: [{ name: REBIRTH, timestamp: now, datatype: DataType.Boolean, boolean_value: true }],
    });
    return [
      {
        kind: 'send',
        topic: `${this.#prefix}/${group}/NCMD/${node}`,
        payload: Buffer.from(Payload.encode(message).finish()),
      },
    ];
  }

  #deviceBirth(
    nodeKey: string,
    device: string,
    topic: string,
    payload: Buffer,
  ): ConventionUpdate[] {
    const decoded = decode(topic, payload);
    const edge = this.#nodes.get(nodeKey);
    // A device of a node we have not seen born cannot be trusted to be current: ask the node for all its births.
    if (edge === undefined) return this.#askRebirth(nodeKey);
    const metrics = birthMetrics(decoded, topic);
    if (!edge.devices.has(device)) {
      if (this.#count >= this.#maxDevices) {
        throw payloadError(
          'sparkplug',
          topic,
          `over the cap of ${this.#maxDevices} Sparkplug nodes and devices`,
        );
      }
      this.#count += 1;
    }
    edge.devices.set(device, metrics);
    const key = `${nodeKey}/${device}`;
    const dataTopic = `${this.#prefix}/${edge.group}/DDATA/${edge.node}/${device}`;
    const info = sensorDevice(
      key,
      device,
      { group: edge.group, edge_node: edge.node, device },
      dataTopic,
      metrics,
    );
    return [
      { kind: 'device', device: info },
      { kind: 'availability', key, online: true },
      ...reading(key, decoded, metrics),
    ];
  }

  #deviceDeath(
    nodeKey: string,
    device: string,
    topic: string,
    payload: Buffer,
  ): ConventionUpdate[] {
    const edge = this.#nodes.get(nodeKey);
    if (edge === undefined || !edge.devices.has(device)) return [];
    decode(topic, payload);
    edge.devices.delete(device);
    this.#count -= 1;
    return gone(`${nodeKey}/${device}`);
  }

  #deviceData(nodeKey: string, device: string, topic: string, payload: Buffer): ConventionUpdate[] {
    const decoded = decode(topic, payload);
    const metrics = this.#nodes.get(nodeKey)?.devices.get(device);
    if (metrics === undefined) return this.#askRebirth(nodeKey);
    return reading(`${nodeKey}/${device}`, decoded, metrics);
  }
}

function decode(topic: string, payload: Buffer): DecodedPayload {
  if (payload.length > MAX_SPARKPLUG_PAYLOAD_BYTES) {
    throw payloadError(
      'sparkplug',
      topic,
      `payload of ${payload.length} bytes is over the ${MAX_SPARKPLUG_PAYLOAD_BYTES}-byte cap`,
    );
  }
  try {
    const decoded: DecodedPayload = Payload.toObject(Payload.decode(payload), {
      longs: String,
      oneofs: true,
    });
    return decoded;
  } catch (err) {
    // protobufjs throws plain Errors (and a RangeError on absurd nesting) for bytes that are not a Payload.
    const why = err instanceof Error ? err.message : String(err);
    throw payloadError('sparkplug', topic, `not a Sparkplug B payload (${why.slice(0, 120)})`);
  }
}

/** Names, aliases and datatypes a BIRTH binds, for the DATA that follows. */
function birthMetrics(decoded: DecodedPayload, topic: string): Metrics {
  const byName = new Map<string, MetricInfo>();
  const byAlias = new Map<string, MetricInfo>();
  for (const m of decoded.metrics ?? []) {
    if (
      typeof m.name !== 'string' ||
      m.name.length === 0 ||
      m.name.length > 256 ||
      m.name.includes('\0')
    )
      continue;
    if (byName.size >= MAX_VALUES_PER_DEVICE) {
      throw payloadError('sparkplug', topic, `over ${MAX_VALUES_PER_DEVICE} metrics`);
    }
    const info = { name: m.name, datatype: m.datatype ?? 0 };
    byName.set(m.name, info);
    if (m.alias !== undefined) byAlias.set(m.alias, info);
  }
  const byCommand = new Map<string, MetricInfo>();
  for (const info of byName.values()) {
    const command = commandName(info.name);
    // A metric whose name cannot be a command name, or that clashes with another's, takes no commands.
    if (info.name !== BD_SEQ && command !== undefined && !byCommand.has(command)) {
      byCommand.set(command, info);
    }
  }
  return { byName, byAlias, byCommand };
}

/**
 * A metric name as a command name of up to 8 levels of letters, digits and
 * `_.-` (what `edgebridge/v1/<ns>/<device>/commands/<name>` carries): other
 * characters become `_`, so `Node Control/Rebirth` is `Node_Control/Rebirth`.
 */
export function commandName(metric: string): string | undefined {
  const levels = metric.split('/').map((l) => l.replace(/[^A-Za-z0-9_.-]/g, '_'));
  const ok = levels.length <= 8 && levels.every((l) => /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(l));
  return ok ? levels.join('/') : undefined;
}

function bdSeqOf(decoded: DecodedPayload): string | undefined {
  const m = decoded.metrics?.find((x) => x.name === BD_SEQ);
  if (m === undefined) return undefined;
  const v = metricValue(m, m.datatype ?? 8);
  return typeof v === 'number' || typeof v === 'string' ? String(v) : undefined;
}

/** The metrics' values by name (aliases resolved through the BIRTH), skipping historical ones and bdSeq. */
function reading(key: string, decoded: DecodedPayload, metrics: Metrics): ConventionUpdate[] {
  const values: Record<string, unknown> = {};
  let any = false;
  for (const m of decoded.metrics ?? []) {
    if (m.is_historical === true) continue;
    const info =
      m.name !== undefined
        ? metrics.byName.get(m.name)
        : m.alias !== undefined
          ? metrics.byAlias.get(m.alias)
          : undefined;
    if (info === undefined || info.name === BD_SEQ) continue;
    const value = metricValue(m, m.datatype ?? info.datatype);
    if (value === undefined) continue;
    values[info.name] = value;
    any = true;
  }
  if (!any) return [];
  const ts = decoded.timestamp === undefined ? undefined : Number(decoded.timestamp);
  return [
    {
      kind: 'reading',
      key,
      values,
      ...(ts !== undefined && Number.isSafeInteger(ts) ? { ts } : {}),
    },
  ];
}

function gone(key: string): ConventionUpdate[] {
  return [
    { kind: 'availability', key, online: false },
    { kind: 'removed', key },
  ];
}

function sensorDevice(
  key: string,
  name: string,
  attributes: Record<string, string>,
  dataTopic: string,
  metrics: Metrics,
): SensorDevice {
  return {
    key,
    name,
    attributes,
    stateTopics: [dataTopic],
    commands: [...metrics.byCommand.keys()],
  };
}
