// A camera described by its SOAP services: device information, MAC address,
// media profiles with their stream and snapshot URIs, and where its event
// service is. One bounded call after another; only GetDeviceInformation must
// succeed (it is where wrong credentials show), the rest add what they can.
import type { Profile } from './onvif-answers.ts';
import { OnvifBadAnswerError, OnvifFaultError } from './soap-errors.ts';
import type { Credentials } from './ws-security.ts';
import {
  getDeviceInformation,
  getMacAddress,
  getProfiles,
  getServiceUrls,
  getSnapshotUri,
  getStreamUri,
  type CameraTarget,
} from './onvif-calls.ts';

/** What SOAP adds to a camera's device. */
export interface CameraDescription {
  properties: Record<string, string>;
  labels: Record<string, string>;
  /** The event service URL, when the camera has one. */
  events?: string;
}

export const LABEL_MANUFACTURER = 'onvif.edgebridge.io/manufacturer';
export const LABEL_MODEL = 'onvif.edgebridge.io/model';
/** Property keys are at most this long (the device schema's limit). */
const MAX_KEY = 128;

/** Describes the camera; throws the first call's error (an OnvifAuthError for wrong credentials). */
export async function describeCamera(t: CameraTarget): Promise<CameraDescription> {
  const info = await getDeviceInformation(t);
  const properties: Record<string, string> = {};
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') properties[key] = redact(value, t.credentials);
  };
  set('ONVIF_MANUFACTURER', info.manufacturer);
  set('ONVIF_MODEL', info.model);
  set('ONVIF_FIRMWARE', info.firmwareVersion);
  set('ONVIF_SERIAL', info.serialNumber);
  set('ONVIF_DEVICE_MAC_ADDRESS', await optional(() => getMacAddress(t)));
  const services = (await optional(() => getServiceUrls(t))) ?? {};
  const media = services.media;
  if (media !== undefined) {
    const profiles = (await optional(() => getProfiles(t, media))) ?? [];
    const named = new Set<string>();
    for (const p of profiles) {
      const suffix = profileSuffix(p);
      if (named.has(suffix)) continue; // two tokens that sanitise alike: the first wins
      named.add(suffix);
      set(`ONVIF_STREAM_URI_${suffix}`, await optional(() => getStreamUri(t, media, p.token)));
      set(`ONVIF_SNAPSHOT_URI_${suffix}`, await optional(() => getSnapshotUri(t, media, p.token)));
    }
  }
  const labels: Record<string, string> = {};
  const manufacturer = labelValue(info.manufacturer);
  const model = labelValue(info.model);
  if (manufacturer !== '') labels[LABEL_MANUFACTURER] = manufacturer;
  if (model !== '') labels[LABEL_MODEL] = model;
  return { properties, labels, ...(services.events ? { events: services.events } : {}) };
}

/**
 * `value` with the password we sent made `REDACTED`: some cameras put it in a
 * snapshot URI's query (`?pwd=...`), where stripping userinfo does not reach.
 */
export function redact(value: string, credentials: Credentials | undefined): string {
  const password = credentials?.password ?? '';
  if (password.length < 4) return value; // a short one would redact ordinary text
  let out = value;
  for (const form of new Set([password, encodeURIComponent(password)]))
    out = out.replaceAll(form, REDACTED);
  return out;
}

const REDACTED = 'REDACTED';

/** A profile token as the ENV_STYLE tail of a property name. */
export function profileSuffix(p: Profile): string {
  const s = p.token.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return s.slice(0, MAX_KEY - 'ONVIF_SNAPSHOT_URI_'.length);
}

/** Text as a Kubernetes label value: other characters become `-`, at most 63, alphanumeric ends. */
export function labelValue(s: string): string {
  return s
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/[^A-Za-z0-9]+$/, '');
}

/**
 * An operation a camera may lack: a fault or an unreadable answer leaves the
 * property out. A refusal, a timeout or a lost connection ends the
 * description (a camera that stopped answering is not worth 30 more timeouts).
 */
async function optional<T>(f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof OnvifFaultError || err instanceof OnvifBadAnswerError) return undefined;
    throw err;
  }
}
