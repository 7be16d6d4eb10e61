// Tasmota native discovery, as Tasmota publishes it and Home Assistant's
// hatasmota reads it: a retained JSON config on `<prefix>/<MAC>/config`
// (ip, dn, fn, hn, mac, md, sw, t, ft, tp, ofln, onln, rl, ...), a sensor
// snapshot on `<prefix>/<MAC>/sensors`, and the device's own topics built
// from its full-topic template `ft` (`%prefix%/%topic%/` by default, with
// `%prefix%` one of tp = [cmnd, stat, tele]): `tele/<t>/LWT` Online/Offline,
// `tele/<t>/SENSOR` and `STATE` and `stat/<t>/RESULT` readings, commands to
// `cmnd/<t>/<command>`. An empty retained config removes the device.
import {
  type CommandRoute,
  type Convention,
  type ConventionUpdate,
  type SensorDevice,
} from '../convention.ts';
import { DEFAULT_MAX_DEVICES, type ConventionOptions } from './options.ts';
import {
  isObject,
  isTopicSafe,
  payloadObject,
  payloadText,
  payloadError,
  stringField,
} from './payload.ts';

const MAC = /^[0-9A-F]{12}$/i;
/** Tasmota command names: letters, then letters, digits and `_` (e.g. `POWER1`, `Backlog`, `Dimmer`). */
const COMMAND = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;
/** What a message on one of a device's own topics means. */
type TopicRole = 'lwt' | 'reading';

interface TasmotaDevice {
  device: SensorDevice;
  /** The expanded full topics, each ending in `/`. */
  cmnd: string;
  /** The LWT payloads from the config (`ofln`, `onln`). */
  offline: string;
  online: string;
  /** The device's own topics we listen to. */
  topics: string[];
}

export class TasmotaConvention implements Convention {
  readonly name = 'tasmota' as const;
  readonly #prefix: string;
  readonly #maxDevices: number;
  /** By MAC, upper case. */
  readonly #devices = new Map<string, TasmotaDevice>();
  readonly #topics = new Map<string, { key: string; role: TopicRole }>();

  constructor(options: ConventionOptions) {
    this.#prefix = options.prefix;
    this.#maxDevices = options.maxDevices ?? DEFAULT_MAX_DEVICES;
  }

  filters(): string[] {
    return [`${this.#prefix}/+/config`, `${this.#prefix}/+/sensors`, ...this.#topics.keys()];
  }

  handle(topic: string, payload: Buffer): ConventionUpdate[] {
    const own = this.#topics.get(topic);
    if (own !== undefined) return this.#own(own.key, own.role, topic, payload);
    if (!topic.startsWith(`${this.#prefix}/`)) return [];
    const [mac, kind, extra] = topic.slice(this.#prefix.length + 1).split('/');
    if (mac === undefined || !MAC.test(mac) || extra !== undefined) return [];
    const key = mac.toUpperCase();
    if (kind === 'config') return this.#config(key, topic, payload);
    if (kind === 'sensors') return this.#sensors(key, topic, payload);
    return [];
  }

  command(key: string, name: string, payload: Buffer): CommandRoute | undefined {
    const known = this.#devices.get(key);
    // Tasmota takes any of its commands on `cmnd/<topic>/<command>`; a name that is not one is refused.
    if (known === undefined || !COMMAND.test(name)) return undefined;
    return { topic: `${known.cmnd}${name}`, payload };
  }

  #config(key: string, topic: string, payload: Buffer): ConventionUpdate[] {
    if (payload.length === 0) return this.#remove(key);
    const config = payloadObject('tasmota', topic, payload);
    const bad = (why: string) => payloadError('tasmota', topic, why);
    const t = stringField(config, 't');
    const ft = stringField(config, 'ft');
    const hn = stringField(config, 'hn') ?? '';
    const mac = stringField(config, 'mac') ?? key;
    const tp = config.tp;
    if (t === undefined || !isTopicSafe(t, false)) throw bad('`t` is not a usable topic');
    if (ft === undefined) throw bad('`ft` (full topic) is missing');
    if (
      !Array.isArray(tp) ||
      tp.length < 3 ||
      !tp.slice(0, 3).every((p): p is string => typeof p === 'string' && isTopicSafe(p, false))
    ) {
      throw bad('`tp` is not three topic prefixes');
    }
    const [cmndPrefix, statPrefix, telePrefix] = tp as [string, string, string];
    const expand = (prefix: string): string => {
      const full = ft
        .replaceAll('%hostname%', hn)
        .replaceAll('%id%', mac.slice(-6))
        .replaceAll('%prefix%', prefix)
        .replaceAll('%topic%', t);
      const withSlash = full.endsWith('/') ? full : `${full}/`;
      // The template and hostname come from the payload: what they expand to must stay a plain topic.
      if (!isTopicSafe(withSlash.slice(0, -1), true))
        throw bad('`ft` does not expand to a usable topic');
      return withSlash;
    };
    const cmnd = expand(cmndPrefix);
    const stat = expand(statPrefix);
    const tele = expand(telePrefix);
    if (!this.#devices.has(key) && this.#devices.size >= this.#maxDevices) {
      throw bad(`over the cap of ${this.#maxDevices} Tasmota devices`);
    }
    const topics: [string, TopicRole][] = [
      [`${tele}LWT`, 'lwt'],
      [`${tele}SENSOR`, 'reading'],
      [`${tele}STATE`, 'reading'],
      [`${stat}RESULT`, 'reading'],
    ];
    for (const [own] of topics) {
      const holder = this.#topics.get(own);
      if (holder !== undefined && holder.key !== key)
        throw bad(`its topics are those of device ${holder.key}`);
    }
    this.#forgetTopics(key);
    for (const [own, role] of topics) this.#topics.set(own, { key, role });

    const attributes: Record<string, string> = { topic: t, full_topic: ft };
    for (const [field, name] of [
      ['ip', 'ip'],
      ['hn', 'hostname'],
      ['sw', 'sw_version'],
      ['mac', 'mac'],
    ] as const) {
      const v = stringField(config, field);
      if (v !== undefined) attributes[name] = v;
    }
    const fn =
      Array.isArray(config.fn) && typeof config.fn[0] === 'string' ? config.fn[0] : undefined;
    const name = stringField(config, 'dn') ?? fn;
    const model = stringField(config, 'md');
    const device: SensorDevice = {
      key,
      ...(name !== undefined ? { name } : {}),
      ...(model !== undefined ? { model } : {}),
      attributes,
      stateTopics: [`${tele}SENSOR`, `${tele}STATE`, `${stat}RESULT`],
      commands: powerCommands(config.rl),
    };
    this.#devices.set(key, {
      device,
      cmnd,
      offline: stringField(config, 'ofln') ?? 'Offline',
      online: stringField(config, 'onln') ?? 'Online',
      topics: topics.map(([own]) => own),
    });
    return [{ kind: 'device', device }];
  }

  #sensors(key: string, topic: string, payload: Buffer): ConventionUpdate[] {
    if (payload.length === 0 || !this.#devices.has(key)) return [];
    const doc = payloadObject('tasmota', topic, payload);
    if (!isObject(doc.sn)) throw payloadError('tasmota', topic, `\`sn\` is not an object`);
    return [{ kind: 'reading', key, values: withoutTime(doc.sn) }];
  }

  #own(key: string, role: TopicRole, topic: string, payload: Buffer): ConventionUpdate[] {
    const known = this.#devices.get(key);
    if (known === undefined || payload.length === 0) return [];
    if (role === 'lwt') {
      const text = payloadText('tasmota', topic, payload);
      if (text === known.online) return [{ kind: 'availability', key, online: true }];
      if (text === known.offline) return [{ kind: 'availability', key, online: false }];
      throw payloadError('tasmota', topic, 'LWT is neither online nor offline');
    }
    return [
      { kind: 'reading', key, values: withoutTime(payloadObject('tasmota', topic, payload)) },
    ];
  }

  #remove(key: string): ConventionUpdate[] {
    if (!this.#devices.has(key)) return [];
    this.#forgetTopics(key);
    this.#devices.delete(key);
    return [{ kind: 'removed', key }];
  }

  #forgetTopics(key: string): void {
    for (const own of this.#devices.get(key)?.topics ?? []) this.#topics.delete(own);
  }
}

/** `POWER<n>` for each relay or light channel in the config's relay list `rl` (0: none at that index). */
function powerCommands(rl: unknown): string[] {
  if (!Array.isArray(rl)) return [];
  return rl
    .slice(0, 32)
    .flatMap((r, i) => (typeof r === 'number' && r !== 0 ? [`POWER${i + 1}`] : []));
}

/** Tasmota's `Time` is the device's local time without a zone: the reading's time is when it arrived. */
function withoutTime(values: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...values };
  delete rest.Time;
  return rest;
}
