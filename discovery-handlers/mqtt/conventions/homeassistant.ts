// Home Assistant MQTT discovery, as its documentation defines it: per-entity
// config topics `<prefix>/<component>/[<node_id>/]<object_id>/config` and
// device-based ones `<prefix>/device/<id>/config` with `cmps`; abbreviations
// and `~` expanded; an empty (retained) config removes what it announced.
// Entities that name the same device (its first identifier, else its first
// connection) make one device; an entity without a device is a device itself.
import {
  ConventionPayloadError,
  type CommandRoute,
  type Convention,
  type ConventionUpdate,
  type SensorDevice,
} from '../convention.ts';
import {
  DEVICE_ABBREVIATIONS,
  ENTITY_ABBREVIATIONS,
  ORIGIN_ABBREVIATIONS,
} from './homeassistant-abbreviations.ts';
import { isObject } from './payload.ts';

/** Home Assistant's MQTT platforms; a config topic under any other component is not discovery. */
const COMPONENTS = new Set([
  'alarm_control_panel',
  'binary_sensor',
  'button',
  'camera',
  'climate',
  'cover',
  'device_automation',
  'device_tracker',
  'event',
  'fan',
  'humidifier',
  'image',
  'lawn_mower',
  'light',
  'lock',
  'notify',
  'number',
  'scene',
  'select',
  'sensor',
  'siren',
  'switch',
  'tag',
  'text',
  'update',
  'vacuum',
  'valve',
  'water_heater',
]);
/** Home Assistant's own rule for node and object ids in a discovery topic. */
const ID = /^[a-zA-Z0-9_-]{1,128}$/;
const MAX_CONFIG_BYTES = 64 * 1024;
const MAX_TOPIC_BYTES = 1024;
const MAX_COMPONENTS = 256;
const MAX_TEXT = 256;
const DEFAULT_MAX_DEVICES = 10_000;

type AvailabilityMode = 'latest' | 'all' | 'any';

interface AvailabilitySource {
  topic: string;
  available: string;
  notAvailable: string;
  /** `{{ value_json.x }}`-style path, if the config gave one this convention can read. */
  path: string[] | undefined;
}

interface DeviceInfo {
  name: string | undefined;
  manufacturer: string | undefined;
  model: string | undefined;
  attributes: Record<string, string>;
}

/** One entity as its config announced it, topics already expanded. */
interface Entity {
  /** The config topic that announced it, plus the component key for device-based configs. */
  id: string;
  /** The name its readings and commands go by: the object id or the `cmps` key. */
  name: string;
  deviceKey: string;
  device: DeviceInfo | undefined;
  stateTopic: string | undefined;
  valuePath: string[] | undefined;
  /** Command name -> topic: `<name>` for command_topic, `<name>/<what>` for <what>_command_topic. */
  commands: Map<string, string>;
  retain: boolean;
  availability: AvailabilitySource[];
  availabilityMode: AvailabilityMode;
}

export interface HomeAssistantOptions {
  /** The discovery prefix, `homeassistant` by default in Home Assistant; no trailing slash. */
  prefix: string;
  /** Devices tracked at most; announcements of more are refused with a payload error. */
  maxDevices?: number;
}

export class HomeAssistantConvention implements Convention {
  readonly name = 'homeassistant' as const;
  readonly #prefix: string;
  readonly #maxDevices: number;
  /** Config topic -> the entity ids it announced. */
  readonly #configs = new Map<string, string[]>();
  readonly #entities = new Map<string, Entity>();
  /** Device key -> its entity ids. */
  readonly #devices = new Map<string, Set<string>>();
  /** State / availability topic -> entity ids that read it. */
  readonly #stateTopics = new Map<string, Set<string>>();
  readonly #availabilityTopics = new Map<string, Set<string>>();
  /** Device key -> availability topic -> last value (true: available). */
  readonly #available = new Map<string, Map<string, boolean>>();

  constructor(options: HomeAssistantOptions) {
    this.#prefix = options.prefix;
    this.#maxDevices = options.maxDevices ?? DEFAULT_MAX_DEVICES;
  }

  filters(): string[] {
    return [
      `${this.#prefix}/+/+/config`,
      `${this.#prefix}/+/+/+/config`,
      ...this.#stateTopics.keys(),
      ...this.#availabilityTopics.keys(),
    ];
  }

  handle(topic: string, payload: Buffer): ConventionUpdate[] {
    const updates: ConventionUpdate[] = [];
    const config = this.#configTopic(topic);
    if (config !== undefined) updates.push(...this.#config(topic, config, payload));
    // A config topic may also be some entity's state topic; so may anything.
    const readers = this.#stateTopics.get(topic);
    if (readers !== undefined) updates.push(...this.#readings(readers, payload));
    const watchers = this.#availabilityTopics.get(topic);
    if (watchers !== undefined) updates.push(...this.#availabilityOf(topic, watchers, payload));
    return updates;
  }

  command(key: string, name: string, payload: Buffer): CommandRoute | undefined {
    for (const id of this.#devices.get(key) ?? []) {
      const entity = this.#entities.get(id);
      const topic = entity?.commands.get(name);
      if (entity !== undefined && topic !== undefined)
        return { topic, payload, retain: entity.retain };
    }
    return undefined;
  }

  /** `{component, node, object}` of a discovery config topic, or undefined. */
  #configTopic(topic: string): { component: string; object: string } | undefined {
    if (!topic.startsWith(`${this.#prefix}/`) || !topic.endsWith('/config')) return undefined;
    const parts = topic.slice(this.#prefix.length + 1, -'/config'.length).split('/');
    const [component = '', ...ids] = parts;
    const object = ids.at(-1);
    if (object === undefined || ids.length > 2 || !ids.every((id) => ID.test(id))) return undefined;
    if (component === 'device') return ids.length === 1 ? { component, object } : undefined;
    return COMPONENTS.has(component) ? { component, object } : undefined;
  }

  #config(
    topic: string,
    where: { component: string; object: string },
    payload: Buffer,
  ): ConventionUpdate[] {
    const before = new Set(this.#configs.get(topic) ?? []);
    let announced: Entity[];
    if (payload.length === 0) {
      announced = [];
    } else {
      const raw = this.#json(topic, payload);
      announced =
        where.component === 'device'
          ? this.#deviceConfig(topic, raw)
          : [this.#entity(topic, topic, where.object, raw)];
    }
    const newKeys = new Set(announced.map((e) => e.deviceKey));
    const known = (key: string): boolean => this.#devices.has(key);
    const added = [...newKeys].filter((k) => !known(k)).length;
    if (added > 0 && this.#devices.size + added > this.#maxDevices) {
      throw this.#error(`${short(topic)}: more than ${this.#maxDevices} devices; ignored`);
    }
    const touched = new Set<string>();
    for (const id of before) {
      const old = this.#entities.get(id);
      if (old !== undefined) touched.add(old.deviceKey);
      this.#forget(id);
    }
    for (const entity of announced) {
      this.#remember(entity);
      touched.add(entity.deviceKey);
    }
    if (announced.length === 0) this.#configs.delete(topic);
    else
      this.#configs.set(
        topic,
        announced.map((e) => e.id),
      );
    return [...touched].map((key) => this.#deviceUpdate(key));
  }

  /** `<prefix>/device/<id>/config`: shared options at the top, one entity per `cmps` entry. */
  #deviceConfig(topic: string, raw: Record<string, unknown>): Entity[] {
    const top = expand(raw, ENTITY_ABBREVIATIONS);
    const components = top.components;
    if (!isObject(components)) throw this.#error(`${short(topic)}: device config without cmps`);
    if (top.device === undefined) throw this.#error(`${short(topic)}: device config without dev`);
    const shared = { ...top };
    delete shared.components;
    const entries = Object.entries(components);
    if (entries.length > MAX_COMPONENTS)
      throw this.#error(`${short(topic)}: more than ${MAX_COMPONENTS} components`);
    const entities: Entity[] = [];
    for (const [key, value] of entries) {
      if (!ID.test(key))
        throw this.#error(`${short(topic)}: component id ${quote(key)} is not valid`);
      if (!isObject(value)) throw this.#error(`${short(topic)}: component ${key} is not an object`);
      const own = expand(value, ENTITY_ABBREVIATIONS);
      // A component left with only its platform is being removed (Home Assistant's two-step removal).
      if (Object.keys(own).every((k) => k === 'platform')) continue;
      if (typeof own.platform !== 'string' || !COMPONENTS.has(own.platform))
        throw this.#error(`${short(topic)}: component ${key} has no known platform (p)`);
      entities.push(this.#entity(topic, `${topic}#${key}`, key, { ...shared, ...own }, true));
    }
    return entities;
  }

  #entity(
    topic: string,
    id: string,
    name: string,
    raw: Record<string, unknown>,
    expanded = false,
  ): Entity {
    const config = expanded ? raw : expand(raw, ENTITY_ABBREVIATIONS);
    const base = config['~'];
    if (base !== undefined && typeof base !== 'string')
      throw this.#error(`${short(topic)}: ~ must be a string`);
    const topicOf = (key: string, value: unknown): string | undefined => {
      if (value === undefined) return undefined;
      if (typeof value !== 'string') throw this.#error(`${short(topic)}: ${key} must be a string`);
      const full =
        base === undefined
          ? value
          : value.startsWith('~')
            ? base + value.slice(1)
            : value.endsWith('~')
              ? value.slice(0, -1) + base
              : value;
      if (!isTopicName(full))
        throw this.#error(
          `${short(topic)}: ${key} ${quote(full)} is not a topic a sensor can publish`,
        );
      return full;
    };
    const device =
      config.device === undefined
        ? undefined
        : this.#deviceInfo(topic, config.device, config.origin);
    const deviceKey = device?.key ?? `entity:${id}`;
    const commands = new Map<string, string>();
    for (const [key, value] of Object.entries(config)) {
      if (!key.endsWith('command_topic')) continue;
      const target = topicOf(key, value);
      if (target === undefined) continue;
      const what = key.slice(0, -'command_topic'.length).replace(/_$/, '');
      commands.set(what === '' ? name : `${name}/${what}`, target);
    }
    const availability: AvailabilitySource[] = [];
    const available = text(config.payload_available) ?? 'online';
    const notAvailable = text(config.payload_not_available) ?? 'offline';
    const single = topicOf('availability_topic', config.availability_topic);
    if (single !== undefined)
      availability.push({
        topic: single,
        available,
        notAvailable,
        path: templatePath(config.availability_template),
      });
    if (config.availability !== undefined) {
      if (!Array.isArray(config.availability))
        throw this.#error(`${short(topic)}: availability must be a list`);
      for (const item of config.availability.slice(0, 16)) {
        if (!isObject(item))
          throw this.#error(`${short(topic)}: availability entries must be objects`);
        const a = expand(item, ENTITY_ABBREVIATIONS);
        const t = topicOf('availability[].topic', a.topic);
        if (t === undefined) throw this.#error(`${short(topic)}: availability entry without topic`);
        availability.push({
          topic: t,
          available: text(a.payload_available) ?? 'online',
          notAvailable: text(a.payload_not_available) ?? 'offline',
          path: templatePath(a.value_template),
        });
      }
    }
    const mode = config.availability_mode;
    return {
      id,
      name,
      deviceKey,
      device: device?.info,
      stateTopic: topicOf('state_topic', config.state_topic),
      valuePath: templatePath(config.value_template),
      commands,
      retain: config.retain === true,
      availability,
      availabilityMode: mode === 'all' || mode === 'any' ? mode : 'latest',
    };
  }

  #deviceInfo(
    topic: string,
    raw: unknown,
    origin: unknown,
  ): { key: string; info: DeviceInfo } | undefined {
    if (!isObject(raw)) throw this.#error(`${short(topic)}: device must be an object`);
    const d = expand(raw, DEVICE_ABBREVIATIONS);
    const ids: unknown[] = Array.isArray(d.identifiers) ? d.identifiers : [d.identifiers];
    const first = ids.find((i) => typeof i === 'string' && i !== '');
    let key: string | undefined = typeof first === 'string' ? `id:${first}` : undefined;
    if (key === undefined && Array.isArray(d.connections)) {
      const c: unknown = d.connections[0];
      if (Array.isArray(c) && c.length === 2 && c.every((x) => typeof x === 'string'))
        key = `connection:${c[0]}:${c[1]}`;
    }
    // Home Assistant needs identifiers or connections to make a device; without them the entity stands alone.
    if (key === undefined) return undefined;
    const attributes: Record<string, string> = {};
    // Which software announced it (e.g. zigbee2mqtt 2.1), worth a property when a sensor misbehaves.
    if (isObject(origin)) {
      const o = expand(origin, ORIGIN_ABBREVIATIONS);
      const name = text(o.name);
      if (name !== undefined) attributes.origin = name;
      const sw = text(o.sw_version);
      if (sw !== undefined) attributes.origin_sw_version = sw;
    }
    for (const k of [
      'sw_version',
      'hw_version',
      'model_id',
      'serial_number',
      'suggested_area',
      'configuration_url',
      'via_device',
    ]) {
      const v = text(d[k]);
      if (v !== undefined) attributes[k] = v;
    }
    return {
      key,
      info: {
        name: text(d.name),
        manufacturer: text(d.manufacturer),
        model: text(d.model),
        attributes,
      },
    };
  }

  #remember(entity: Entity): void {
    this.#entities.set(entity.id, entity);
    let set = this.#devices.get(entity.deviceKey);
    if (set === undefined) this.#devices.set(entity.deviceKey, (set = new Set()));
    set.add(entity.id);
    if (entity.stateTopic !== undefined) add(this.#stateTopics, entity.stateTopic, entity.id);
    for (const a of entity.availability) add(this.#availabilityTopics, a.topic, entity.id);
  }

  #forget(id: string): void {
    const entity = this.#entities.get(id);
    if (entity === undefined) return;
    this.#entities.delete(id);
    const set = this.#devices.get(entity.deviceKey);
    set?.delete(id);
    if (set?.size === 0) {
      this.#devices.delete(entity.deviceKey);
      this.#available.delete(entity.deviceKey);
    }
    if (entity.stateTopic !== undefined) remove(this.#stateTopics, entity.stateTopic, id);
    for (const a of entity.availability) remove(this.#availabilityTopics, a.topic, id);
  }

  /** The device as its entities now describe it, or its removal when none is left. */
  #deviceUpdate(key: string): ConventionUpdate {
    const ids = this.#devices.get(key);
    if (ids === undefined) return { kind: 'removed', key };
    const entities = [...ids].flatMap((id) => this.#entities.get(id) ?? []);
    // Entities add to the device's facts, the latest announcement winning, as in Home Assistant's registry.
    const info: DeviceInfo = {
      name: undefined,
      manufacturer: undefined,
      model: undefined,
      attributes: {},
    };
    for (const e of entities) {
      if (e.device === undefined) continue;
      info.name = e.device.name ?? info.name;
      info.manufacturer = e.device.manufacturer ?? info.manufacturer;
      info.model = e.device.model ?? info.model;
      Object.assign(info.attributes, e.device.attributes);
    }
    const device: SensorDevice = {
      key,
      attributes: info.attributes,
      stateTopics: [...new Set(entities.flatMap((e) => e.stateTopic ?? []))],
      commands: [...new Set(entities.flatMap((e) => [...e.commands.keys()]))],
    };
    if (info.name !== undefined) device.name = info.name;
    if (info.manufacturer !== undefined) device.manufacturer = info.manufacturer;
    if (info.model !== undefined) device.model = info.model;
    return { kind: 'device', device };
  }

  #readings(ids: Set<string>, payload: Buffer): ConventionUpdate[] {
    const text = payload.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text) as unknown;
    } catch {
      json = undefined;
    }
    const byDevice = new Map<string, Record<string, unknown>>();
    for (const id of ids) {
      const entity = this.#entities.get(id);
      if (entity === undefined) continue;
      let value: unknown = json ?? text;
      if (entity.valuePath !== undefined) {
        if (json === undefined) throw this.#error(`state of ${entity.name}: payload is not JSON`);
        value = pick(json, entity.valuePath);
        if (value === undefined) continue;
      }
      let values = byDevice.get(entity.deviceKey);
      if (values === undefined) byDevice.set(entity.deviceKey, (values = {}));
      values[entity.name] = value;
    }
    return [...byDevice].map(([key, values]) => ({ kind: 'reading', key, values }));
  }

  #availabilityOf(topic: string, ids: Set<string>, payload: Buffer): ConventionUpdate[] {
    const raw = payload.toString('utf8');
    const updates: ConventionUpdate[] = [];
    const decided = new Set<string>();
    for (const id of ids) {
      const entity = this.#entities.get(id);
      if (entity === undefined || decided.has(entity.deviceKey)) continue;
      for (const source of entity.availability) {
        if (source.topic !== topic) continue;
        let value: unknown = raw;
        if (source.path !== undefined) {
          try {
            value = pick(JSON.parse(raw) as unknown, source.path);
          } catch {
            value = undefined;
          }
        }
        const online =
          value === source.available ? true : value === source.notAvailable ? false : undefined;
        if (online === undefined) continue;
        let seen = this.#available.get(entity.deviceKey);
        if (seen === undefined)
          this.#available.set(entity.deviceKey, (seen = new Map<string, boolean>()));
        seen.set(topic, online);
        const values = [...seen.values()];
        const now =
          entity.availabilityMode === 'all'
            ? values.every(Boolean)
            : entity.availabilityMode === 'any'
              ? values.some(Boolean)
              : online;
        decided.add(entity.deviceKey);
        updates.push({ kind: 'availability', key: entity.deviceKey, online: now });
        break;
      }
    }
    return updates;
  }

  #json(topic: string, payload: Buffer): Record<string, unknown> {
    if (payload.length > MAX_CONFIG_BYTES)
      throw this.#error(`${short(topic)}: config over ${MAX_CONFIG_BYTES} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8')) as unknown;
    } catch {
      throw this.#error(`${short(topic)}: config is not JSON`);
    }
    if (!isObject(value)) throw this.#error(`${short(topic)}: config is not a JSON object`);
    return value;
  }

  #error(message: string): ConventionPayloadError {
    return new ConventionPayloadError(this.name, message);
  }
}

/** Keys replaced by their long names; a long name given as well wins over its abbreviation. */
function expand(
  raw: Record<string, unknown>,
  table: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const long = (Object.hasOwn(table, key) ? table[key] : undefined) ?? key;
    if (long !== key && Object.hasOwn(raw, long)) continue;
    out[long] = value;
  }
  return out;
}

/** A string of at most MAX_TEXT characters (numbers too, as HA's schemas coerce them), else undefined. */
function text(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string' || value === '') return undefined;
  return value.slice(0, MAX_TEXT);
}

/** A topic a sensor may publish on: no wildcards, no NUL, not empty, not over the cap. */
function isTopicName(topic: string): boolean {
  return (
    topic !== '' &&
    !/[+#]/.test(topic) &&
    !topic.includes('\u0000') &&
    Buffer.byteLength(topic) <= MAX_TOPIC_BYTES
  );
}

/**
 * The JSON path of the value templates sensors commonly use
 * (`{{ value_json.a.b }}`, `{{ value_json['a'] }}`, with filters such as
 * `| float` ignored); undefined for `{{ value }}` or what needs a template engine.
 */
export function templatePath(template: unknown): string[] | undefined {
  if (typeof template !== 'string') return undefined;
  const m =
    /^\{\{\s*value_json((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*(?:'[^']*'|"[^"]*"|\d+)\s*\])+)\s*(?:\|[^}]*)?\}\}$/.exec(
      template.trim(),
    );
  if (m === null) return undefined;
  const path: string[] = [];
  for (const part of (m[1] ?? '').matchAll(
    /\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^']*)'|"([^"]*)"|(\d+))\s*\]/g,
  ))
    path.push(part[1] ?? part[2] ?? part[3] ?? part[4] ?? '');
  return path;
}

function pick(value: unknown, path: string[]): unknown {
  let v = value;
  for (const p of path) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, p)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function add(index: Map<string, Set<string>>, topic: string, id: string): void {
  let set = index.get(topic);
  if (set === undefined) index.set(topic, (set = new Set()));
  set.add(id);
}

function remove(index: Map<string, Set<string>>, topic: string, id: string): void {
  const set = index.get(topic);
  set?.delete(id);
  if (set?.size === 0) index.delete(topic);
}

function short(topic: string): string {
  return topic.length > 128 ? `${topic.slice(0, 128)}...` : topic;
}

function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}
