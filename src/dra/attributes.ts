// A device's DRA attributes, from untrusted strings: the handler's properties
// and labels become names and values the API server accepts, or are left out
// with a reason (the device itself is always published).
import {
  DRIVER,
  MAX_ATTRIBUTE_NAME,
  MAX_ATTRIBUTE_VALUE,
  MAX_DEVICE_ATTRIBUTES,
} from './driver.ts';
import type { NodeDevice } from './node-device.ts';

/** One resource.k8s.io/v1 DeviceAttribute: exactly one field set. */
export type DeviceAttribute = { string: string } | { bool: boolean } | { int: number };

/** Domain of the attributes that carry a device's properties as they are. */
export const PROPERTY_DOMAIN = `property.${DRIVER}`;
/** Domain of attributes from labels without a prefix of their own. */
export const LABEL_DOMAIN = `label.${DRIVER}`;

/** Attributes in the driver's own domain, from the first of these properties that is set. */
const WELL_KNOWN: readonly (readonly [string, readonly string[]])[] = [
  ['manufacturer', ['ONVIF_MANUFACTURER', 'USB_MANUFACTURER']],
  ['model', ['ONVIF_MODEL', 'USB_PRODUCT']],
  ['vendorId', ['USB_VENDOR_ID']],
  ['productId', ['USB_PRODUCT_ID']],
  ['serial', ['ONVIF_SERIAL', 'USB_SERIAL']],
];

const C_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A DNS subdomain of at most 63 characters (DeviceMaxDomainLength). */
const DOMAIN = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** C0 and C1 controls: no selector means them, and a log line should not carry them. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export interface Attributes {
  attributes: Record<string, DeviceAttribute>;
  /** What was left out and why, e.g. `property ONVIF_X: value longer than 64 characters`. */
  skipped: string[];
}

/** A name's identifier part made a C identifier of at most 32 characters, or undefined. */
export function identifier(name: string): string | undefined {
  if (name.length === 0 || name.length > 4 * MAX_ATTRIBUTE_NAME) return undefined;
  let id = name.replace(/[^A-Za-z0-9_]/g, '_');
  if (/^[0-9]/.test(id)) id = `_${id}`;
  return id.length <= MAX_ATTRIBUTE_NAME && C_IDENTIFIER.test(id) ? id : undefined;
}

/** Why a string cannot be an attribute value, or undefined if it can. */
function valueProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'value is not a string';
  if (value.length > MAX_ATTRIBUTE_VALUE)
    return `value longer than ${MAX_ATTRIBUTE_VALUE} characters`;
  if (CONTROL.test(value)) return 'value contains control characters';
  return undefined;
}

/** A short, printable form of an untrusted name for `skipped`. */
function shown(name: string): string {
  return JSON.stringify(name.slice(0, 40));
}

/**
 * The attributes of a device: in the driver's domain, always present, its
 * identity (namespace, discovery, device, handler, shared) and the well-known
 * manufacturer/model/vendorId/productId/serial ("" when unknown); then its labels under their
 * own prefix; then every property under `property.edgebridge.io`, by name, up
 * to the API's 32 per device.
 */
export function attributesOf(device: NodeDevice): Attributes {
  const attributes: Record<string, DeviceAttribute> = {};
  const skipped: string[] = [];
  let count = 0;
  const add = (name: string, value: DeviceAttribute, what: string): void => {
    if (name in attributes) {
      skipped.push(`${what}: attribute ${name} is already set`);
    } else if (count >= MAX_DEVICE_ATTRIBUTES) {
      skipped.push(`${what}: more than ${MAX_DEVICE_ATTRIBUTES} attributes`);
    } else {
      attributes[name] = value;
      count++;
    }
  };
  const addString = (name: string, value: unknown, what: string): void => {
    const problem = valueProblem(value);
    if (problem !== undefined) skipped.push(`${what}: ${problem}`);
    else add(name, { string: value as string }, what);
  };
  // Always set, "" when unknown or unusable: a selector such as
  // `.manufacturer == "Acme"` must not fail on a device without one, since a
  // CEL error on any device aborts the whole allocation.
  const addAlways = (name: string, value: unknown, what: string): void => {
    const problem = value === undefined ? undefined : valueProblem(value);
    if (problem !== undefined) skipped.push(`${what}: ${problem}`);
    add(
      name,
      { string: problem === undefined && value !== undefined ? (value as string) : '' },
      what,
    );
  };
  const properties = device.spec.properties ?? {};
  addAlways('namespace', device.namespace, 'namespace');
  addAlways('discovery', device.spec.discovery, 'discovery');
  addAlways('device', device.name, 'device name');
  addAlways('handler', device.spec.handler, 'handler');
  add('shared', { bool: device.spec.shared }, 'shared');
  for (const [name, keys] of WELL_KNOWN) {
    const key = keys.find((k) => Object.hasOwn(properties, k));
    addAlways(name, key === undefined ? undefined : properties[key], `property ${key ?? keys[0]}`);
  }
  for (const key of Object.keys(device.labels ?? {}).sort()) {
    const name = labelAttribute(key);
    if (name === undefined) skipped.push(`label ${shown(key)}: not usable as an attribute name`);
    else if (name !== null) addString(name, device.labels?.[key], `label ${key}`);
  }
  for (const key of Object.keys(properties).sort()) {
    const id = identifier(key);
    if (id === undefined) skipped.push(`property ${shown(key)}: not usable as an attribute name`);
    else addString(`${PROPERTY_DOMAIN}/${id}`, properties[key], `property ${key}`);
  }
  return { attributes, skipped: [...new Set(skipped)] };
}

/**
 * The attribute name for a label key: `prefix/name` keeps its prefix as the
 * domain, a bare name goes under label.edgebridge.io; null for the driver's
 * own labels (discovery, handler), which are attributes already.
 */
function labelAttribute(key: string): string | undefined | null {
  const slash = key.indexOf('/');
  const domain = slash < 0 ? LABEL_DOMAIN : key.slice(0, slash);
  if (domain === DRIVER) return null;
  const id = identifier(slash < 0 ? key : key.slice(slash + 1));
  if (id === undefined || !DOMAIN.test(domain)) return undefined;
  return `${domain}/${id}`;
}
