// What every convention is built with, and the caps that keep its state bounded
// whatever the sensor broker carries.

/** How one convention is set up by the handler. */
export interface ConventionOptions {
  /** The topic prefix it listens under, e.g. `homie`, `zigbee2mqtt`, `spBv1.0`; no trailing slash. */
  prefix: string;
  /** Devices tracked at most; announcements beyond it are refused with a payload error. */
  maxDevices?: number;
}

/** Enough for the 5,000-sensor burst the benchmark drives, with room to spare. */
export const DEFAULT_MAX_DEVICES = 10_000;
/** A payload larger than this is refused before it is parsed (Z2M's bridge/devices has its own cap). */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** Names (ids, property names, metric names) longer than this are refused. */
export const MAX_NAME_LENGTH = 256;
/** Values names per device (Homie properties, Sparkplug metrics, Z2M exposes) kept at most. */
export const MAX_VALUES_PER_DEVICE = 1024;
