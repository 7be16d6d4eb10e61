import { validateDetails, type DetailsSchema, type SchemaNode } from '../details.ts';
import { discoveredDeviceSchema } from '../device-schema.ts';
import { InvalidDetailsError, type DiscoveredDevice } from '../handler.ts';
import { checkSchema, SchemaError } from '../../src/util/schema-check.ts';

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

const deviceListSchema: SchemaNode = {
  type: 'array',
  maxItems: MAX_DEVICES,
  items: discoveredDeviceSchema,
};

const detailsSchema: DetailsSchema<SimulatedDetails> = {
  type: 'object',
  properties: {
    devices: { ...deviceListSchema, default: [] },
    file: {
      type: 'string',
      maxLength: 4096,
      pattern: '^/',
      'x-hint': 'an absolute path',
    },
    publishIntervalMs: { type: 'integer', minimum: 10, maximum: 3_600_000 },
  },
};

/** Ids must be unique: the schema cannot say so. */
function uniqueIds(devices: DiscoveredDevice[], where: string): DiscoveredDevice[] {
  const seen = new Set<string>();
  for (const d of devices) {
    if (seen.has(d.id)) throw new InvalidDetailsError(`${where}: duplicate device id '${d.id}'`);
    seen.add(d.id);
  }
  return devices;
}

/** Checks a list of device entries (the devices file): at most MAX_DEVICES, ids unique. */
export function parseDeviceList(v: unknown, where: string): DiscoveredDevice[] {
  try {
    return uniqueIds(checkSchema(deviceListSchema, v, where) as DiscoveredDevice[], where);
  } catch (err) {
    if (err instanceof SchemaError) throw new InvalidDetailsError(err.message);
    throw err;
  }
}

export function parseSimulatedDetails(details: unknown): SimulatedDetails {
  const out = validateDetails(detailsSchema, details);
  uniqueIds(out.devices, 'details.devices');
  return out;
}
