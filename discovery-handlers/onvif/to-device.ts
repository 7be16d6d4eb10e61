// One camera record as a device: the properties WS-Discovery alone can give.
// Pure. The SOAP half (device information, profiles, stream URIs) adds to
// what this returns; it keeps the id and these properties as they are.
import type { DiscoveredDevice } from '../handler.ts';
import type { CameraRecord } from './camera-table.ts';

const NAME_SCOPE = 'onvif://www.onvif.org/name/';
const HARDWARE_SCOPE = 'onvif://www.onvif.org/hardware/';
/** A name or hardware property is for a workload's environment: short, printable. */
const MAX_NAME = 256;
/** ONVIF_SCOPES holds whole scopes up to this many characters. */
export const MAX_SCOPES_VALUE = 2048;

/** Control characters would make a value unsafe to print or log; they become `?`. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;

/** `url` without user name and password, as a string. */
export function withoutUserinfo(url: URL): string {
  const u = new URL(url.href);
  u.username = '';
  u.password = '';
  return u.href;
}

/** The value of the first scope under `prefix`, percent-decoded and made printable. */
export function scopeValue(scopes: readonly string[], prefix: string): string | undefined {
  const scope = scopes.find((s) => s.toLowerCase().startsWith(prefix));
  if (scope === undefined) return undefined;
  const raw = scope.slice(prefix.length);
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    decoded = raw; // a stray `%`: keep the text as it was sent
  }
  const clean = decoded.replace(CONTROL, '?').trim().slice(0, MAX_NAME);
  return clean.length > 0 ? clean : undefined;
}

/** Whole scopes, space-separated, as many as fit in MAX_SCOPES_VALUE. */
function scopeList(scopes: readonly string[]): string {
  let out = '';
  for (const s of scopes) {
    const clean = s.replace(CONTROL, '?');
    const next = out === '' ? clean : `${out} ${clean}`;
    if (next.length > MAX_SCOPES_VALUE) break;
    out = next;
  }
  return out;
}

/** The device for a camera from its WS-Discovery data; id: the endpoint (`urn:uuid:...`). */
export function toDevice(camera: CameraRecord): DiscoveredDevice {
  const properties: Record<string, string> = {
    ONVIF_DEVICE_SERVICE_URL: withoutUserinfo(camera.serviceUrl),
    ONVIF_DEVICE_UUID: camera.uuid.replace(CONTROL, '?'),
    ONVIF_DEVICE_IP_ADDRESS: camera.serviceUrl.hostname,
    ONVIF_SCOPES: scopeList(camera.scopes),
  };
  const name = scopeValue(camera.scopes, NAME_SCOPE);
  if (name !== undefined) properties.ONVIF_NAME = name;
  const hardware = scopeValue(camera.scopes, HARDWARE_SCOPE);
  if (hardware !== undefined) properties.ONVIF_HARDWARE = hardware;
  const ipv6 = camera.otherXaddrs.filter((u) => u.hostname.startsWith('['));
  const named = camera.otherXaddrs.filter((u) => !u.hostname.startsWith('['));
  if (ipv6.length > 0)
    properties.ONVIF_DEVICE_SERVICE_URLS_IPV6 = ipv6.map(withoutUserinfo).join(' ');
  if (named.length > 0)
    properties.ONVIF_DEVICE_SERVICE_URLS_HOSTNAME = named.map(withoutUserinfo).join(' ');
  return { id: camera.endpoint.replace(CONTROL, '?'), properties };
}
