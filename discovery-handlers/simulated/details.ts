import { InvalidDetailsError, type DiscoveredDevice } from '../handler.ts';

export interface SimulatedDetails {
  /** Devices present from the start. */
  devices: DiscoveredDevice[];
  /** A YAML or JSON file listing devices, re-read whenever it changes (devices come and go at run time). */
  file?: string;
  /**
   * Every listed device publishes a JSON sample ({"device", "seq", "time"}) on
   * its data topic this often; absent: the devices publish nothing but state.
   */
  publishIntervalMs?: number;
}

const MAX_DEVICES = 10_000;
const MIN_PUBLISH_MS = 10;
const MAX_PUBLISH_MS = 3_600_000;
const ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,252}$/;
const PROPERTY_KEY = /^[A-Z_][A-Z0-9_]{0,127}$/;
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stringMap(
  v: unknown,
  where: string,
  key: RegExp,
  value: (s: string) => boolean,
): Record<string, string> {
  if (v === undefined) return {};
  if (!isRecord(v)) throw new InvalidDetailsError(`${where} must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!key.test(k)) throw new InvalidDetailsError(`${where}: invalid key '${k.slice(0, 64)}'`);
    if (typeof val !== 'string' || !value(val))
      throw new InvalidDetailsError(`${where}.${k}: invalid value`);
    out[k] = val;
  }
  return out;
}

/** Checks one device entry (from details or from the devices file). */
export function parseDevice(v: unknown, where: string): DiscoveredDevice {
  if (!isRecord(v)) throw new InvalidDetailsError(`${where} must be an object with an id`);
  if (typeof v.id !== 'string' || !ID.test(v.id)) {
    throw new InvalidDetailsError(
      `${where}.id must be 1-253 characters of letters, digits and ._:/-`,
    );
  }
  const labels = stringMap(v.labels, `${where}.labels`, LABEL_KEY, (s) => LABEL_VALUE.test(s));
  return {
    id: v.id,
    properties: stringMap(
      v.properties,
      `${where}.properties`,
      PROPERTY_KEY,
      (s) => s.length <= 4096,
    ),
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
  };
}

/** Checks a list of device entries: at most MAX_DEVICES, ids unique. */
export function parseDeviceList(v: unknown, where: string): DiscoveredDevice[] {
  if (!Array.isArray(v)) throw new InvalidDetailsError(`${where} must be a list`);
  if (v.length > MAX_DEVICES)
    throw new InvalidDetailsError(`${where} has ${v.length} devices; at most ${MAX_DEVICES}`);
  const devices = v.map((d, i) => parseDevice(d, `${where}[${i}]`));
  const seen = new Set<string>();
  for (const d of devices) {
    if (seen.has(d.id)) throw new InvalidDetailsError(`${where}: duplicate device id '${d.id}'`);
    seen.add(d.id);
  }
  return devices;
}

export function parseSimulatedDetails(details: unknown): SimulatedDetails {
  const d = details ?? {};
  if (!isRecord(d))
    throw new InvalidDetailsError('details must be an object with devices and/or file');
  for (const key of Object.keys(d)) {
    if (key !== 'devices' && key !== 'file' && key !== 'publishIntervalMs')
      throw new InvalidDetailsError(
        `unknown field '${key.slice(0, 64)}' (want devices, file, publishIntervalMs)`,
      );
  }
  const devices = d.devices === undefined ? [] : parseDeviceList(d.devices, 'details.devices');
  const out: SimulatedDetails = { devices };
  if (d.publishIntervalMs !== undefined) {
    const ms = d.publishIntervalMs;
    if (
      typeof ms !== 'number' ||
      !Number.isInteger(ms) ||
      ms < MIN_PUBLISH_MS ||
      ms > MAX_PUBLISH_MS
    )
      throw new InvalidDetailsError(
        `details.publishIntervalMs must be an integer from ${MIN_PUBLISH_MS} to ${MAX_PUBLISH_MS}`,
      );
    out.publishIntervalMs = ms;
  }
  if (d.file === undefined) return out;
  if (typeof d.file !== 'string' || !d.file.startsWith('/') || d.file.length > 4096) {
    throw new InvalidDetailsError('details.file must be an absolute path');
  }
  return { ...out, file: d.file };
}
