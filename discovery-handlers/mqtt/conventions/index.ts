// The conventions this build follows, registered by name in one place; a
// name of CONVENTION_NAMES without an entry here is refused by validate().
import type { Convention, ConventionName } from '../convention.ts';
import { HomeAssistantConvention } from './homeassistant.ts';
import { HomieConvention } from './homie.ts';
import { SparkplugConvention } from './sparkplug.ts';
import { TasmotaConvention } from './tasmota.ts';
import { Zigbee2MqttConvention } from './zigbee2mqtt.ts';

/** What every convention is built with. */
export interface ConventionSetup {
  /** Its topic prefix, no trailing slash. */
  prefix: string;
  /** Devices it tracks at most. */
  maxDevices: number;
}

type ConventionFactory = (setup: ConventionSetup) => Convention;

const factories: Partial<Record<ConventionName, ConventionFactory>> = {
  homeassistant: (setup) => new HomeAssistantConvention(setup),
  homie: (setup) => new HomieConvention(setup),
  zigbee2mqtt: (setup) => new Zigbee2MqttConvention(setup),
  tasmota: (setup) => new TasmotaConvention(setup),
  sparkplug: (setup) => new SparkplugConvention(setup),
};

/** Each convention's prefix unless details.prefixes says otherwise. */
export const DEFAULT_PREFIXES: Readonly<Record<ConventionName, string>> = {
  homeassistant: 'homeassistant',
  homie: 'homie',
  zigbee2mqtt: 'zigbee2mqtt',
  tasmota: 'tasmota/discovery',
  sparkplug: 'spBv1.0',
};

/** The convention `name` set up as asked, or undefined if this build lacks it. */
export function createConvention(
  name: ConventionName,
  setup: ConventionSetup,
): Convention | undefined {
  return factories[name]?.(setup);
}

/** Whether this build follows `name`. */
export function hasConvention(name: ConventionName): boolean {
  return factories[name] !== undefined;
}
