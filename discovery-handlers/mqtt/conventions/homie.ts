// Homie 5 (`<prefix>/5/<id>/$description` JSON + `$state`) and Homie 4
// (`<prefix>/<id>/$homie`, `$name`, `$nodes`, `<node>/$properties`, ...,
// `$state`), as homieiot/convention defines them. Both live under one prefix,
// so one convention serves both; a device's key is its base topic below the
// prefix (`5/<id>` or `<id>`), which no two devices share.
import {
  type CommandRoute,
  type Convention,
  type ConventionUpdate,
  type SensorDevice,
} from '../convention.ts';
import { DEFAULT_MAX_DEVICES, MAX_VALUES_PER_DEVICE, type ConventionOptions } from './options.ts';
import { isObject, payloadError, payloadObject, payloadText } from './payload.ts';

/** Homie topic ids: lowercase letters, digits and hyphens (4.x also lets underscores through in practice). */
const ID = /^[a-z0-9_][a-z0-9_-]{0,63}$/i;
/** $state values that say the device cannot be reached; `ready` says it can, the rest say nothing. */
const OFFLINE_STATES = new Set(['lost', 'disconnected']);

interface HomieProperty {
  datatype: string;
  settable: boolean;
  name?: string;
  unit?: string;
}

interface HomieDevice {
  version: 4 | 5;
  /** `<prefix>/5/<id>` or `<prefix>/<id>`. */
  base: string;
  /** The convention version string (`$homie`, or the description's `homie`); set once announced. */
  homie?: string;
  name?: string;
  state?: string;
  attributes: Record<string, string>;
  /** By `node/property`. */
  properties: Map<string, HomieProperty>;
  /** Homie 4 only: the `$nodes` list and each node's `$properties` list, as announced so far. */
  nodes: string[];
  nodeProperties: Map<string, string[]>;
  /** Homie 4 only: property attributes by path, kept whether or not `$properties` lists the path yet. */
  propertyAttributes: Map<string, Partial<HomieProperty>>;
  /**
   * The last value text by path, short ones only: a broker delivers retained
   * topics in its own order (a value before its `$datatype`, before
   * `$description`), so a value is read again once what types it arrives.
   */
  lastValues: Map<string, string>;
}

/** Values longer than this are not kept for a later reading (the next update brings them). */
const MAX_KEPT_VALUE = 128;

/** Homie 4 device attributes kept as device attributes (3.x-era ones included: firmware, MAC, IP). */
const V4_ATTRIBUTES: Record<string, string> = {
  $implementation: 'implementation',
  $mac: 'mac',
  $localip: 'localip',
  '$fw/name': 'fw_name',
  '$fw/version': 'fw_version',
};

export class HomieConvention implements Convention {
  readonly name = 'homie' as const;
  readonly #prefix: string;
  readonly #maxDevices: number;
  readonly #devices = new Map<string, HomieDevice>();

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
    if (levels[0] === '5') {
      const id = levels[1];
      if (id === undefined || !ID.test(id)) return [];
      return this.#handle(5, `5/${id}`, levels.slice(2), topic, payload);
    }
    const id = levels[0];
    if (id === undefined || !ID.test(id)) return [];
    return this.#handle(4, id, levels.slice(1), topic, payload);
  }

  command(key: string, name: string, payload: Buffer): CommandRoute | undefined {
    const device = this.#devices.get(key);
    const property = device?.properties.get(name);
    if (device === undefined || property === undefined || !property.settable) return undefined;
    // Controllers publish to `/set` with non-retained messages only (both versions).
    return { topic: `${device.base}/${name}/set`, payload, retain: false };
  }

  #handle(
    version: 4 | 5,
    key: string,
    rest: string[],
    topic: string,
    payload: Buffer,
  ): ConventionUpdate[] {
    const attribute = rest.join('/');
    let device = this.#devices.get(key);
    if (attribute === '$state' || attribute === (version === 5 ? '$description' : '$homie')) {
      // Clearing these retained topics is how a device is removed.
      if (payload.length === 0) return this.#remove(key);
    }
    if (device === undefined) {
      // A value or a cleared topic of a device we do not know says nothing.
      if (payload.length === 0 || !rest.some((l) => l.startsWith('$'))) return [];
      if (this.#devices.size >= this.#maxDevices) {
        throw payloadError('homie', topic, `over the cap of ${this.#maxDevices} Homie devices`);
      }
      device = {
        version,
        base: `${this.#prefix}/${key}`,
        attributes: {},
        properties: new Map(),
        nodes: [],
        nodeProperties: new Map(),
        propertyAttributes: new Map(),
        lastValues: new Map(),
      };
      this.#devices.set(key, device);
    }
    if (attribute === '$state')
      return this.#state(key, device, payloadText('homie', topic, payload));
    if (version === 5) {
      if (attribute === '$description') return this.#describe5(key, device, topic, payload);
      if (rest.length === 2) return this.#value(key, device, attribute, topic, payload);
      return [];
    }
    return this.#handle4(key, device, rest, topic, payload);
  }

  #state(key: string, device: HomieDevice, state: string): ConventionUpdate[] {
    const wasOnline = availability(device.state);
    device.state = state;
    const online = availability(state);
    if (device.homie === undefined || online === undefined || online === wasOnline) return [];
    return [{ kind: 'availability', key, online }];
  }

  #describe5(key: string, device: HomieDevice, topic: string, payload: Buffer): ConventionUpdate[] {
    const doc = payloadObject('homie', topic, payload);
    const bad = (why: string) => payloadError('homie', topic, why);
    if (typeof doc.homie !== 'string' || !doc.homie.startsWith('5.'))
      throw bad('`homie` is not a 5.x version');
    if (typeof doc.name !== 'string') throw bad('`name` is not a string');
    const properties = new Map<string, HomieProperty>();
    for (const [nodeId, node] of entries(doc.nodes)) {
      if (!ID.test(nodeId) || !isObject(node)) throw bad('a node id or node is not valid');
      for (const [propertyId, p] of entries(node.properties)) {
        if (!ID.test(propertyId) || !isObject(p))
          throw bad(`node ${nodeId}: a property id or property is not valid`);
        if (typeof p.datatype !== 'string')
          throw bad(`property ${nodeId}/${propertyId} has no datatype`);
        if (properties.size >= MAX_VALUES_PER_DEVICE)
          throw bad(`over ${MAX_VALUES_PER_DEVICE} properties`);
        properties.set(`${nodeId}/${propertyId}`, {
          datatype: p.datatype,
          settable: p.settable === true,
          ...(typeof p.name === 'string' ? { name: p.name } : {}),
          ...(typeof p.unit === 'string' ? { unit: p.unit } : {}),
        });
      }
    }
    const attributes: Record<string, string> = { homie: doc.homie };
    if (typeof doc.version === 'number') attributes.version = String(doc.version);
    if (typeof doc.type === 'string') attributes.type = doc.type;
    if (typeof doc.root === 'string' && ID.test(doc.root)) attributes.root = doc.root;
    if (typeof doc.parent === 'string' && ID.test(doc.parent)) attributes.parent = doc.parent;
    device.homie = doc.homie;
    device.name = doc.name;
    device.attributes = attributes;
    device.properties = properties;
    return [...this.#announce(key, device), ...this.#replay(key, device, [...properties.keys()])];
  }

  #handle4(
    key: string,
    device: HomieDevice,
    rest: string[],
    topic: string,
    payload: Buffer,
  ): ConventionUpdate[] {
    const attribute = rest.join('/');
    const text = () => payloadText('homie', topic, payload);
    if (attribute === '$homie') {
      device.homie = text();
      return [
        ...this.#announce(key, device),
        ...this.#replay(key, device, [...device.properties.keys()]),
      ];
    }
    if (attribute === '$name') {
      device.name = text();
      return this.#announce4(key, device);
    }
    if (attribute === '$nodes') {
      device.nodes = idList(text(), topic).map((n) => n.replace(/\[\]$/, ''));
      return this.#rebuild4(key, device);
    }
    const named = V4_ATTRIBUTES[attribute];
    if (named !== undefined) {
      device.attributes[named] = text();
      return this.#announce4(key, device);
    }
    const [node, second, third] = rest;
    if (node === undefined || node.startsWith('$')) return [];
    if (rest.length === 2 && second === '$properties') {
      device.nodeProperties.set(node, idList(text(), topic));
      return this.#rebuild4(key, device);
    }
    if (rest.length === 2 && second !== undefined && !second.startsWith('$')) {
      return this.#value(key, device, `${node}/${second}`, topic, payload);
    }
    if (rest.length === 3 && second !== undefined && third !== undefined && third.startsWith('$')) {
      const path = `${node}/${second}`;
      const attributes = device.propertyAttributes.get(path) ?? {};
      if (!device.propertyAttributes.has(path)) {
        if (device.propertyAttributes.size >= MAX_VALUES_PER_DEVICE) return [];
        device.propertyAttributes.set(path, attributes);
      }
      const value = text();
      if (third === '$datatype') attributes.datatype = value;
      else if (third === '$settable') attributes.settable = value === 'true';
      else if (third === '$name') attributes.name = value;
      else if (third === '$unit') attributes.unit = value;
      else return [];
      const updates = this.#rebuild4(key, device);
      return third === '$datatype' ? [...updates, ...this.#replay(key, device, [path])] : updates;
    }
    return [];
  }

  /** Homie 4 spreads the description over topics: rebuild the property table as `$nodes`/`$properties` arrive. */
  #rebuild4(key: string, device: HomieDevice): ConventionUpdate[] {
    const properties = new Map<string, HomieProperty>();
    for (const node of device.nodes) {
      for (const id of device.nodeProperties.get(node) ?? []) {
        if (properties.size >= MAX_VALUES_PER_DEVICE) break;
        const path = `${node}/${id}`;
        const a = device.propertyAttributes.get(path) ?? {};
        // Datatype defaults to string in Homie 4; the attributes may come later.
        properties.set(path, {
          datatype: a.datatype ?? 'string',
          settable: a.settable === true,
          ...(a.name !== undefined ? { name: a.name } : {}),
          ...(a.unit !== undefined ? { unit: a.unit } : {}),
        });
      }
    }
    // Node lists of nodes that are not in `$nodes` are dropped so that state stays bounded.
    for (const node of device.nodeProperties.keys()) {
      if (!device.nodes.includes(node)) device.nodeProperties.delete(node);
    }
    const added = [...properties.keys()].filter((p) => !device.properties.has(p));
    device.properties = properties;
    const updates = this.#announce4(key, device);
    return updates.length === 0 ? [] : [...updates, ...this.#replay(key, device, added)];
  }

  #announce4(key: string, device: HomieDevice): ConventionUpdate[] {
    return device.homie === undefined ? [] : this.#announce(key, device);
  }

  #announce(key: string, device: HomieDevice): ConventionUpdate[] {
    const updates: ConventionUpdate[] = [{ kind: 'device', device: toSensorDevice(key, device) }];
    const online = availability(device.state);
    if (online !== undefined) updates.push({ kind: 'availability', key, online });
    return updates;
  }

  #value(
    key: string,
    device: HomieDevice,
    path: string,
    topic: string,
    payload: Buffer,
  ): ConventionUpdate[] {
    // An empty payload clears a retained value (as on removal): no reading.
    if (payload.length === 0) return [];
    const text = payloadText('homie', topic, payload);
    if (
      text.length <= MAX_KEPT_VALUE &&
      (device.lastValues.has(path) || device.lastValues.size < MAX_VALUES_PER_DEVICE)
    ) {
      device.lastValues.set(path, text);
    }
    const property = device.properties.get(path);
    if (property === undefined || device.homie === undefined) return [];
    return [
      { kind: 'reading', key, values: { [path]: parseValue(property.datatype, text, topic) } },
    ];
  }

  /** Readings of kept values for `paths` now that they can be typed; a value its type refuses is left out. */
  #replay(key: string, device: HomieDevice, paths: string[]): ConventionUpdate[] {
    if (device.homie === undefined) return [];
    const values: Record<string, unknown> = {};
    let any = false;
    for (const path of paths) {
      const text = device.lastValues.get(path);
      const property = device.properties.get(path);
      if (text === undefined || property === undefined) continue;
      try {
        values[path] = parseValue(property.datatype, text, '');
        any = true;
      } catch {
        // The value does not fit the type it now has: its next update will say.
      }
    }
    return any ? [{ kind: 'reading', key, values }] : [];
  }

  #remove(key: string): ConventionUpdate[] {
    const device = this.#devices.get(key);
    if (device === undefined) return [];
    this.#devices.delete(key);
    return device.homie === undefined ? [] : [{ kind: 'removed', key }];
  }
}

function availability(state: string | undefined): boolean | undefined {
  if (state === 'ready') return true;
  if (state !== undefined && OFFLINE_STATES.has(state)) return false;
  return undefined;
}

/** Homie 5.0 gives nodes and properties as objects keyed by id; drafts of 5 gave arrays of `{id, ...}`. */
function entries(value: unknown): [string, unknown][] {
  if (Array.isArray(value)) {
    return value.map((v): [string, unknown] => [
      isObject(v) && typeof v.id === 'string' ? v.id : '',
      v,
    ]);
  }
  return isObject(value) ? Object.entries(value) : [];
}

function idList(text: string, topic: string): string[] {
  const ids = text === '' ? [] : text.split(',');
  if (ids.length > MAX_VALUES_PER_DEVICE || ids.some((id) => !ID.test(id.replace(/\[\]$/, '')))) {
    throw payloadError('homie', topic, 'not a list of Homie ids');
  }
  return ids;
}

/** A property value as JSON, by its Homie datatype. */
function parseValue(datatype: string, text: string, topic: string): unknown {
  const bad = () => payloadError('homie', topic, `not a valid ${datatype} value`);
  switch (datatype) {
    case 'integer': {
      if (!/^-?\d{1,20}$/.test(text)) throw bad();
      const n = Number(text);
      // Homie integers are 64-bit; beyond 2^53 a string keeps every digit.
      return Number.isSafeInteger(n) ? n : text;
    }
    case 'float': {
      const n = Number(text);
      if (text.trim() !== text || text === '' || !Number.isFinite(n)) throw bad();
      return n;
    }
    case 'boolean':
      if (text !== 'true' && text !== 'false') throw bad();
      return text === 'true';
    case 'json':
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw bad();
      }
    default:
      return text;
  }
}

function toSensorDevice(key: string, device: HomieDevice): SensorDevice {
  const attributes: Record<string, string> = { ...device.attributes };
  if (device.version === 4 && device.homie !== undefined) attributes.homie = device.homie;
  const paths = [...device.properties.keys()];
  return {
    key,
    ...(device.name !== undefined ? { name: device.name } : {}),
    attributes,
    stateTopics: paths.map((p) => `${device.base}/${p}`),
    commands: paths.filter((p) => device.properties.get(p)?.settable === true),
  };
}
