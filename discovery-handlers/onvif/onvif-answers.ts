// What the camera's SOAP answers say, read from a parsed Body (soap-xml.ts).
// Pure. Every string is capped and made printable, every list is capped, and
// every URI loses its userinfo: a camera may put its own password in one.
import { attribute, child, children, isObject, text } from './soap-xml.ts';

/** Profiles read at most (each gives two properties; a device has at most 64). */
export const MAX_PROFILES = 16;
/** Notifications read from one PullMessages answer at most. */
export const MAX_NOTIFICATIONS = 64;
/** SimpleItems read from one notification at most. */
const MAX_ITEMS = 16;
/** Characters of a name, model, token or item kept. */
const MAX_SHORT = 256;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;
const clean = (s: string, max = MAX_SHORT): string => s.replace(CONTROL, '?').trim().slice(0, max);

export interface DeviceInformation {
  manufacturer: string;
  model: string;
  firmwareVersion: string;
  serialNumber: string;
  hardwareId: string;
}

export function readDeviceInformation(body: Record<string, unknown>): DeviceInformation {
  const r = child(body, 'GetDeviceInformationResponse');
  return {
    manufacturer: clean(text(child(r, 'Manufacturer'))),
    model: clean(text(child(r, 'Model'))),
    firmwareVersion: clean(text(child(r, 'FirmwareVersion'))),
    serialNumber: clean(text(child(r, 'SerialNumber'))),
    hardwareId: clean(text(child(r, 'HardwareId'))),
  };
}

const MAC =
  /^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$/i;

/** The MAC address (aa:bb:cc:dd:ee:ff) of the first enabled interface that has a valid one. */
export function readMacAddress(body: Record<string, unknown>): string | undefined {
  const r = child(body, 'GetNetworkInterfacesResponse');
  for (const nic of children(r, 'NetworkInterfaces', MAX_PROFILES)) {
    if (text(child(nic, 'Enabled')).toLowerCase() === 'false') continue;
    const m = MAC.exec(text(child(child(nic, 'Info'), 'HwAddress')).trim());
    if (m !== null) return m.slice(1).join(':').toLowerCase();
  }
  return undefined;
}

/** Where the media and event services are, from GetCapabilities; absent when the camera has none. */
export function readServiceUrls(body: Record<string, unknown>): { media?: URL; events?: URL } {
  const caps = child(child(body, 'GetCapabilitiesResponse'), 'Capabilities');
  const media = httpUrl(text(child(child(caps, 'Media'), 'XAddr')));
  const events = httpUrl(text(child(child(caps, 'Events'), 'XAddr')));
  return { ...(media ? { media } : {}), ...(events ? { events } : {}) };
}

export interface Profile {
  token: string;
  name: string;
}

/** Media profiles (token and name), at most MAX_PROFILES, tokens unique and non-empty. */
export function readProfiles(body: Record<string, unknown>): Profile[] {
  const r = child(body, 'GetProfilesResponse');
  const seen = new Set<string>();
  const out: Profile[] = [];
  for (const p of children(r, 'Profiles', MAX_PROFILES)) {
    const token = clean(attribute(p, 'token'), 64);
    if (token === '' || seen.has(token)) continue;
    seen.add(token);
    out.push({ token, name: clean(text(child(p, 'Name'))) });
  }
  return out;
}

/** The MediaUri/Uri of a GetStreamUri or GetSnapshotUri answer, without userinfo; undefined if unusable. */
export function readMediaUri(
  body: Record<string, unknown>,
  answer: 'GetStreamUriResponse' | 'GetSnapshotUriResponse',
): string | undefined {
  const raw = text(child(child(child(body, answer), 'MediaUri'), 'Uri')).trim();
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return undefined;
  }
  // A URI without a host (`rtsp:/x`) keeps what looks like userinfo in its path.
  if (!['rtsp:', 'rtsps:', 'http:', 'https:'].includes(u.protocol) || u.host === '')
    return undefined;
  u.username = '';
  u.password = '';
  return u.href;
}

/** The PullPoint's address from CreatePullPointSubscription, or undefined. */
export function readSubscription(body: Record<string, unknown>): URL | undefined {
  const r = child(body, 'CreatePullPointSubscriptionResponse');
  return httpUrl(text(child(child(r, 'SubscriptionReference'), 'Address')));
}

export interface Notification {
  /** The topic as sent, e.g. `tns1:VideoSource/MotionAlarm`. */
  topic: string;
  /** Source and Data SimpleItems by name, e.g. {Source: 'VideoSource_1', State: 'true'}. */
  source: Record<string, string>;
  data: Record<string, string>;
  /** The camera's UtcTime of the message, if it said. */
  utcTime?: string;
  /** Initialized, Changed or Deleted, if it said. */
  propertyOperation?: string;
}

/** The notifications of a PullMessages answer, at most MAX_NOTIFICATIONS. */
export function readNotifications(body: Record<string, unknown>): Notification[] {
  const r = child(body, 'PullMessagesResponse');
  return children(r, 'NotificationMessage', MAX_NOTIFICATIONS).map((n) => {
    const message = child(child(n, 'Message'), 'Message');
    const utcTime = clean(attribute(message, 'UtcTime'), 64);
    const operation = clean(attribute(message, 'PropertyOperation'), 32);
    return {
      topic: clean(text(child(n, 'Topic'))),
      source: simpleItems(child(message, 'Source')),
      data: simpleItems(child(message, 'Data')),
      ...(utcTime !== '' ? { utcTime } : {}),
      ...(operation !== '' ? { propertyOperation: operation } : {}),
    };
  });
}

function simpleItems(node: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of children(node, 'SimpleItem', MAX_ITEMS)) {
    if (!isObject(item)) continue;
    const name = clean(attribute(item, 'Name'), 64);
    if (name !== '' && name !== '__proto__') out[name] = clean(attribute(item, 'Value'));
  }
  return out;
}

/** An http(s) URL without userinfo, or undefined. */
function httpUrl(raw: string): URL | undefined {
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    u.username = '';
    u.password = '';
    return u;
  } catch {
    return undefined;
  }
}
