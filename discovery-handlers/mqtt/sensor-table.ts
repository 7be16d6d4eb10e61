// The sensors one handler run knows, one entry per physical device: the
// sources' updates applied, readings and availability sent to the node
// broker, and the device list the handler yields.
import { createHash } from 'node:crypto';
import type { DevicePublisher, DiscoveredDevice } from '../handler.ts';
import type { CommandRoute, ConventionUpdate, SensorDevice } from './convention.ts';
import { sensorDeviceId } from './device-id.ts';
import type { Source } from './index.ts';

const MAX_VALUE = 4096;
const MAX_ATTRIBUTES = 32;

interface Entry {
  id: string;
  source: Source;
  device: SensorDevice;
  /** A digest of the device as last applied, to tell a repeated announcement from a change. */
  digest: string;
  /** The device as listed, made once per change: every list holds all devices, and there may be thousands. */
  discovered: DiscoveredDevice;
  /** Last availability the sensor gave; undefined: it has said nothing. */
  online: boolean | undefined;
  /** In a list the handler has yielded (so the agent has marked it online). */
  listed: boolean;
}

export interface SensorTableOptions {
  /** The sensor broker, as devices' properties name it (no credentials). */
  brokerUrl: string;
  maxDevices: number;
  publish: DevicePublisher;
  /** A new device was refused: the cap is reached. */
  onLimit: (source: string) => void;
  /** Publishes a message a convention sends of its own accord on the sensor broker. */
  send: (topic: string, payload: Buffer) => void;
}

export class SensorTable {
  readonly #opts: SensorTableOptions;
  /** `<source>\0<key>` -> entry. */
  readonly #entries = new Map<string, Entry>();
  readonly #byId = new Map<string, Entry>();
  #version = 0;

  constructor(opts: SensorTableOptions) {
    this.#opts = opts;
  }

  /** Changes whenever the device list does. */
  get version(): number {
    return this.#version;
  }

  /** Applies one message's updates; true if an announcement changed (so may the filters). */
  apply(source: Source, updates: readonly ConventionUpdate[]): boolean {
    let announced = false;
    for (const u of updates) {
      if (u.kind === 'send') {
        this.#opts.send(u.topic, u.payload);
        continue;
      }
      const slot = `${source.name}\u0000${u.kind === 'device' ? u.device.key : u.key}`;
      const entry = this.#entries.get(slot);
      if (u.kind === 'device') {
        announced = true;
        this.#announce(slot, entry, source, u.device);
      } else if (u.kind === 'removed') {
        announced = true;
        if (entry === undefined) continue;
        this.#entries.delete(slot);
        this.#byId.delete(entry.id);
        this.#version++;
      } else if (u.kind === 'availability') {
        if (entry === undefined) continue;
        entry.online = u.online;
        if (entry.listed) this.#opts.publish.state(entry.id, u.online ? 'online' : 'offline');
      } else if (entry !== undefined) {
        this.#opts.publish.data(
          entry.id,
          JSON.stringify({ ts: u.ts ?? Date.now(), values: u.values }),
        );
      }
    }
    return announced;
  }

  #announce(slot: string, entry: Entry | undefined, source: Source, device: SensorDevice): void {
    // Not the JSON itself: a digest is what thousands of retained announcements leave behind.
    const digest = createHash('sha1').update(JSON.stringify(device)).digest('base64');
    if (entry !== undefined) {
      if (entry.digest === digest) return;
      entry.device = device;
      entry.digest = digest;
      entry.discovered = this.#discovered(entry.id, source, device);
      this.#version++;
      return;
    }
    const id = sensorDeviceId(source.name, device.key);
    if (this.#entries.size >= this.#opts.maxDevices || this.#byId.has(id)) {
      this.#opts.onLimit(source.name);
      return;
    }
    const added: Entry = {
      id,
      source,
      device,
      digest,
      discovered: this.#discovered(id, source, device),
      online: undefined,
      listed: false,
    };
    this.#entries.set(slot, added);
    this.#byId.set(id, added);
    this.#version++;
  }

  /** The current device list. */
  devices(): DiscoveredDevice[] {
    return Array.from(this.#entries.values(), (e) => e.discovered);
  }

  /** The list just yielded has been applied: availability known before it now goes out. */
  listed(): void {
    for (const e of this.#entries.values()) {
      if (e.listed) continue;
      e.listed = true;
      if (e.online === false) this.#opts.publish.state(e.id, 'offline');
    }
  }

  /** Where a command for device `id` goes on the sensor broker, if its source knows the name. */
  route(id: string, name: string, payload: Buffer): CommandRoute | undefined {
    const entry = this.#byId.get(id);
    return entry?.source.command(entry.device.key, name, payload);
  }

  #discovered(id: string, source: Source, d: SensorDevice): DiscoveredDevice {
    const properties: Record<string, string> = {
      MQTT_CONVENTION: source.name,
      MQTT_BROKER_URL: this.#opts.brokerUrl,
      MQTT_DEVICE_KEY: clean(d.key),
      MQTT_STATE_TOPICS: capped(JSON.stringify(d.stateTopics)),
      MQTT_COMMANDS: capped(JSON.stringify(d.commands)),
    };
    if (d.name !== undefined) properties.MQTT_DEVICE_NAME = clean(d.name);
    if (d.manufacturer !== undefined) properties.MQTT_MANUFACTURER = clean(d.manufacturer);
    if (d.model !== undefined) properties.MQTT_MODEL = clean(d.model);
    for (const [k, v] of Object.entries(d.attributes).slice(0, MAX_ATTRIBUTES)) {
      const name = `MQTT_ATTR_${k.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`.slice(0, 128);
      if (typeof v === 'string') properties[name] = clean(v);
    }
    return {
      id,
      properties,
      labels: { 'edgebridge.io/mqtt-convention': source.name },
    };
  }
}

/** Untrusted text as a property value: no control characters, capped. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, MAX_VALUE);
}

/** A list too long for one property is cut where a JSON reader will notice (it is then not JSON). */
function capped(text: string): string {
  return text.slice(0, MAX_VALUE);
}
