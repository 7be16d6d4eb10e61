// Zigbee2MQTT as its MQTT topics and messages documentation defines it:
// `<prefix>/bridge/devices` (retained list; the coordinator is not a device),
// `<prefix>/bridge/state` (1.x `online`, 2.x `{"state":"online"}`), per-device
// `<prefix>/<friendly_name>/availability` (both forms), readings as JSON on
// `<prefix>/<friendly_name>`, commands to `<prefix>/<friendly_name>/set`.
// The key is the IEEE address: a friendly name can be renamed, the address not.
import {
  type CommandRoute,
  type Convention,
  type ConventionUpdate,
  type SensorDevice,
} from '../convention.ts';
import { DEFAULT_MAX_DEVICES, MAX_VALUES_PER_DEVICE, type ConventionOptions } from './options.ts';
import {
  isObject,
  isTopicSafe,
  payloadJson,
  payloadObject,
  payloadText,
  payloadError,
  stringField,
} from './payload.ts';

/** A bridge with a few hundred devices and their full definitions sends megabytes here. */
const MAX_DEVICES_PAYLOAD_BYTES = 16 * 1024 * 1024;
const IEEE = /^0x[0-9a-f]{16}$/i;
/** Expose properties usable as a command name (one level of `edgebridge/v1/.../commands/<name>`). */
const PROPERTY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The `access` bit of an expose that says it can be set (1 published, 2 set, 4 get). */
const ACCESS_SET = 2;
/** The command that forwards a pod's JSON unchanged to `<friendly_name>/set`. */
const SET_ALL = 'set';
/** A state seen before its device is listed is kept only up to this size. */
const MAX_KEPT_READING_BYTES = 4096;

interface Z2mDevice {
  device: SensorDevice;
  friendlyName: string;
  /** Settable expose properties. */
  settable: Set<string>;
  /** The device's own availability (undefined: it publishes none), apart from the bridge's. */
  available: boolean | undefined;
}

export class Zigbee2MqttConvention implements Convention {
  readonly name = 'zigbee2mqtt' as const;
  readonly #prefix: string;
  readonly #maxDevices: number;
  readonly #devices = new Map<string, Z2mDevice>();
  /** friendly name -> IEEE address. */
  readonly #byName = new Map<string, string>();
  /** Availability heard for names not (yet) in bridge/devices: retained topics arrive in any order. */
  readonly #pending = new Map<string, boolean>();
  /** The last (retained) state of names not (yet) in bridge/devices, small ones only, for the same reason. */
  readonly #pendingReadings = new Map<string, Record<string, unknown>>();
  #bridgeOnline: boolean | undefined;

  constructor(options: ConventionOptions) {
    this.#prefix = options.prefix;
    this.#maxDevices = options.maxDevices ?? DEFAULT_MAX_DEVICES;
  }

  filters(): string[] {
    return [`${this.#prefix}/#`];
  }

  handle(topic: string, payload: Buffer): ConventionUpdate[] {
    if (!topic.startsWith(`${this.#prefix}/`)) return [];
    const rest = topic.slice(this.#prefix.length + 1);
    if (rest === 'bridge/devices') return this.#bridgeDevices(topic, payload);
    if (rest === 'bridge/state') return this.#bridgeState(topic, payload);
    if (rest.startsWith('bridge/')) return [];
    const ieee = this.#byName.get(rest);
    if (ieee !== undefined) return this.#reading(ieee, topic, payload);
    if (rest.endsWith('/availability')) {
      return this.#availability(rest.slice(0, -'/availability'.length), topic, payload);
    }
    return this.#earlyReading(rest, topic, payload);
  }

  /** A device's state before bridge/devices names it: kept (bounded) to be read once it does. */
  #earlyReading(name: string, topic: string, payload: Buffer): ConventionUpdate[] {
    if (payload.length === 0 || payload.length > MAX_KEPT_READING_BYTES || !isTopicSafe(name, true))
      return [];
    if (!this.#pendingReadings.has(name) && this.#pendingReadings.size >= this.#maxDevices)
      return [];
    try {
      this.#pendingReadings.set(name, payloadObject('zigbee2mqtt', topic, payload));
    } catch {
      // Not a device state (attribute output, another tool's topic): nothing to say about it yet.
    }
    return [];
  }

  command(key: string, name: string, payload: Buffer): CommandRoute | undefined {
    const known = this.#devices.get(key);
    if (known === undefined) return undefined;
    const topic = `${this.#prefix}/${known.friendlyName}/set`;
    if (name === SET_ALL) return { topic, payload };
    if (!known.settable.has(name)) return undefined;
    // `{"<property>": value}` on `/set` is the documented form; a payload that is not JSON is sent as a string.
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8')) as unknown;
    } catch {
      value = payload.toString('utf8');
    }
    return { topic, payload: Buffer.from(JSON.stringify({ [name]: value })) };
  }

  #bridgeDevices(topic: string, payload: Buffer): ConventionUpdate[] {
    // A cleared retained list: the bridge is gone, and so are its devices.
    const list =
      payload.length === 0
        ? []
        : payloadJson('zigbee2mqtt', topic, payload, MAX_DEVICES_PAYLOAD_BYTES);
    if (!Array.isArray(list)) {
      throw payloadError('zigbee2mqtt', topic, 'payload is not a JSON array');
    }
    const next = new Map<string, Z2mDevice>();
    const names = new Set<string>();
    for (const entry of list) {
      if (next.size >= this.#maxDevices) break;
      const parsed = this.#parseEntry(entry);
      // A malformed entry (or a clash of names) is skipped: it must not cost the other devices their place.
      if (parsed === undefined || next.has(parsed.device.key) || names.has(parsed.friendlyName))
        continue;
      next.set(parsed.device.key, parsed);
      names.add(parsed.friendlyName);
    }
    const updates: ConventionUpdate[] = [];
    for (const key of this.#devices.keys()) {
      if (!next.has(key)) updates.push({ kind: 'removed', key });
    }
    this.#byName.clear();
    for (const [key, fresh] of next) {
      const old = this.#devices.get(key);
      this.#byName.set(fresh.friendlyName, key);
      // Availability may arrive before the list names the device; a renamed device keeps its own.
      fresh.available = this.#pending.get(fresh.friendlyName) ?? old?.available;
      this.#pending.delete(fresh.friendlyName);
      const early = this.#pendingReadings.get(fresh.friendlyName);
      this.#pendingReadings.delete(fresh.friendlyName);
      if (old === undefined || JSON.stringify(old.device) !== JSON.stringify(fresh.device)) {
        updates.push({ kind: 'device', device: fresh.device });
      }
      if (old === undefined) {
        const online = this.#online(fresh);
        if (online !== undefined) updates.push({ kind: 'availability', key, online });
      }
      if (early !== undefined) updates.push({ kind: 'reading', key, values: early });
    }
    this.#devices.clear();
    for (const [key, value] of next) this.#devices.set(key, value);
    return updates;
  }

  #parseEntry(entry: unknown): Z2mDevice | undefined {
    if (!isObject(entry) || entry.type === 'Coordinator') return undefined;
    const ieee = stringField(entry, 'ieee_address');
    const friendlyName = stringField(entry, 'friendly_name');
    if (ieee === undefined || !IEEE.test(ieee) || friendlyName === undefined) return undefined;
    // The name becomes part of topics we match and publish to: no wildcards, no climbing, not `bridge/...`.
    if (
      !isTopicSafe(friendlyName, true) ||
      friendlyName === 'bridge' ||
      friendlyName.startsWith('bridge/')
    ) {
      return undefined;
    }
    const definition = isObject(entry.definition) ? entry.definition : {};
    const settable = new Set<string>();
    collectSettable(definition.exposes, settable, 0);
    const attributes: Record<string, string> = {};
    for (const field of [
      'model_id',
      'manufacturer',
      'type',
      'power_source',
      'software_build_id',
      'date_code',
    ]) {
      const v = stringField(entry, field);
      if (v !== undefined) attributes[field] = v;
    }
    const description = stringField(definition, 'description');
    if (description !== undefined) attributes.description = description;
    const manufacturer = stringField(definition, 'vendor') ?? stringField(entry, 'manufacturer');
    const model = stringField(definition, 'model') ?? stringField(entry, 'model_id');
    const key = ieee.toLowerCase();
    return {
      friendlyName,
      settable,
      available: undefined,
      device: {
        key,
        name: friendlyName,
        ...(manufacturer !== undefined ? { manufacturer } : {}),
        ...(model !== undefined ? { model } : {}),
        attributes,
        stateTopics: [`${this.#prefix}/${friendlyName}`],
        commands: [SET_ALL, ...[...settable].sort()],
      },
    };
  }

  #bridgeState(topic: string, payload: Buffer): ConventionUpdate[] {
    if (payload.length === 0) return [];
    const online = parseAvailability(topic, payload);
    if (online === this.#bridgeOnline) return [];
    this.#bridgeOnline = online;
    const updates: ConventionUpdate[] = [];
    for (const [key, known] of this.#devices) {
      const deviceOnline = this.#online(known);
      if (deviceOnline !== undefined)
        updates.push({ kind: 'availability', key, online: deviceOnline });
    }
    return updates;
  }

  #availability(name: string, topic: string, payload: Buffer): ConventionUpdate[] {
    if (payload.length === 0) return [];
    const online = parseAvailability(topic, payload);
    const key = this.#byName.get(name);
    const known = key === undefined ? undefined : this.#devices.get(key);
    if (key === undefined || known === undefined) {
      if (
        isTopicSafe(name, true) &&
        (this.#pending.has(name) || this.#pending.size < this.#maxDevices)
      ) {
        this.#pending.set(name, online);
      }
      return [];
    }
    known.available = online;
    // While the bridge is offline every device is, whatever its last availability said.
    if (this.#bridgeOnline === false) return [];
    return [{ kind: 'availability', key, online }];
  }

  #reading(key: string, topic: string, payload: Buffer): ConventionUpdate[] {
    if (payload.length === 0) return [];
    const values = payloadObject('zigbee2mqtt', topic, payload);
    return [{ kind: 'reading', key, values }];
  }

  /** A device is offline when its bridge is; else as its own availability says (online if it has none). */
  #online(known: Z2mDevice): boolean | undefined {
    if (this.#bridgeOnline === false) return false;
    if (known.available !== undefined) return known.available;
    return this.#bridgeOnline;
  }
}

/** `online` / `offline` (1.x and legacy availability) or `{"state": "online"}` (2.x). */
function parseAvailability(topic: string, payload: Buffer): boolean {
  const text = payloadText('zigbee2mqtt', topic, payload).trim();
  let state: unknown = text;
  if (text.startsWith('{')) {
    const obj = payloadObject('zigbee2mqtt', topic, payload);
    state = obj.state;
  }
  if (state === 'online') return true;
  if (state === 'offline') return false;
  throw payloadError('zigbee2mqtt', topic, 'availability is neither online nor offline');
}

/** Settable expose properties, through composite and specific exposes' `features`. */
function collectSettable(exposes: unknown, into: Set<string>, depth: number): void {
  if (!Array.isArray(exposes) || depth > 4) return;
  for (const expose of exposes) {
    if (into.size >= MAX_VALUES_PER_DEVICE) return;
    if (!isObject(expose)) continue;
    const property = expose.property;
    if (
      typeof property === 'string' &&
      PROPERTY.test(property) &&
      typeof expose.access === 'number' &&
      (expose.access & ACCESS_SET) !== 0
    ) {
      into.add(property);
    }
    collectSettable(expose.features, into, depth + 1);
  }
}
