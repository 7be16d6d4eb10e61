// The contract between the mqtt handler and each announcement convention
// (Home Assistant, Homie, Zigbee2MQTT, Tasmota, Sparkplug B). A convention
// is a state machine over the messages under its prefix: it knows nothing of
// sockets, Devices or the node broker, so each one is tested as pure logic.

export const CONVENTION_NAMES = [
  'homeassistant',
  'homie',
  'zigbee2mqtt',
  'tasmota',
  'sparkplug',
] as const;
export type ConventionName = (typeof CONVENTION_NAMES)[number];

/** Where a command named `name` goes on the sensor's broker. */
export interface CommandRoute {
  topic: string;
  /** The payload to publish; undefined: forward the pod's payload unchanged. */
  payload?: Buffer;
  /** Sparkplug and Homie commands are not retained; a convention may ask for it. */
  retain?: boolean;
}

/**
 * One physical device as its convention announced it. The handler turns the
 * raw `key` into a safe Device id; nothing here is trusted.
 */
export interface SensorDevice {
  /** The convention's own identity (HA device identifiers, Homie id, IEEE address, MAC, group/node/device). */
  key: string;
  name?: string;
  manufacturer?: string;
  model?: string;
  /** Extra facts worth a property, as convention-specific names (e.g. `sw_version`). */
  attributes: Record<string, string>;
  /** Topics whose messages carry this device's readings, for the properties a pod reads. */
  stateTopics: string[];
  /** Command names this device accepts (e.g. an HA entity's object id, a Homie property path). */
  commands: string[];
}

/** What one message meant. A message may mean several things, or nothing. */
export type ConventionUpdate =
  /** Announced, or its announcement changed: the whole device as now known. */
  | { kind: 'device'; device: SensorDevice }
  /** Its announcement withdrawn (empty retained config, a death with no rebirth, ...). */
  | { kind: 'removed'; key: string }
  /** Availability from a last will, `$state`, LWT or a death certificate. */
  | { kind: 'availability'; key: string; online: boolean }
  /** Readings, by value name, to republish as `{ts, values}` on the device's data topic. */
  | { kind: 'reading'; key: string; values: Record<string, unknown>; ts?: number }
  /** A message the convention itself sends to the sensor broker (Sparkplug's rebirth request). */
  | { kind: 'send'; topic: string; payload: Buffer };

/** A protocol one family of sensors speaks; one instance per handler run (it keeps state). */
export interface Convention {
  readonly name: ConventionName;
  /** The filters to subscribe to now; they may grow as announcements name new state topics. */
  filters(): string[];
  /** One message from the sensor broker; throws a ConventionPayloadError for a bad payload. */
  handle(topic: string, payload: Buffer): ConventionUpdate[];
  /** Where a pod's command `name` for device `key` goes; undefined if the device has no such command. */
  command(key: string, name: string, payload: Buffer): CommandRoute | undefined;
}

/** A payload a convention cannot use; the handler logs it (rate-limited per topic) and goes on. */
export class ConventionPayloadError extends Error {
  readonly code = 'EDGEBRIDGE_MQTT_PAYLOAD';
  readonly convention: ConventionName;
  constructor(convention: ConventionName, message: string) {
    super(message);
    this.name = 'ConventionPayloadError';
    this.convention = convention;
  }
}
