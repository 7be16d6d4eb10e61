// The ONVIF operations the handler uses, each one bounded SOAP call
// (soap-client.ts) read by onvif-answers.ts.
import {
  readDeviceInformation,
  readMacAddress,
  readMediaUri,
  readNotifications,
  readProfiles,
  readServiceUrls,
  readSubscription,
  type DeviceInformation,
  type Notification,
  type Profile,
} from './onvif-answers.ts';
import { soapCall } from './soap-client.ts';
import { escapeXml } from './soap-xml.ts';
import type { Credentials } from './ws-security.ts';

const TDS = 'http://www.onvif.org/ver10/device/wsdl';
const TRT = 'http://www.onvif.org/ver10/media/wsdl';
const TEV = 'http://www.onvif.org/ver10/events/wsdl';
const WSNT = 'http://docs.oasis-open.org/wsn/b-2';
const WSA = 'http://www.w3.org/2005/08/addressing';

/** Where and as whom to call a camera; `signal` ends every call in flight. */
export interface CameraTarget {
  url: string;
  credentials: Credentials | undefined;
  signal: AbortSignal;
  timeoutMs?: number;
}

const call = (
  t: CameraTarget,
  url: string,
  action: string,
  body: string,
  header?: string,
): Promise<Record<string, unknown>> =>
  soapCall({
    url,
    action,
    body,
    credentials: t.credentials,
    signal: t.signal,
    ...(header !== undefined ? { header } : {}),
    ...(t.timeoutMs !== undefined ? { timeoutMs: t.timeoutMs } : {}),
  });

export async function getDeviceInformation(t: CameraTarget): Promise<DeviceInformation> {
  const body = await call(
    t,
    t.url,
    `${TDS}/GetDeviceInformation`,
    `<GetDeviceInformation xmlns="${TDS}"/>`,
  );
  return readDeviceInformation(body);
}

export async function getMacAddress(t: CameraTarget): Promise<string | undefined> {
  const body = await call(
    t,
    t.url,
    `${TDS}/GetNetworkInterfaces`,
    `<GetNetworkInterfaces xmlns="${TDS}"/>`,
  );
  return readMacAddress(body);
}

/** The media and event service URLs, moved onto the device service's host and port. */
export async function getServiceUrls(
  t: CameraTarget,
): Promise<{ media?: string; events?: string }> {
  const body = await call(
    t,
    t.url,
    `${TDS}/GetCapabilities`,
    `<GetCapabilities xmlns="${TDS}"><Category>All</Category></GetCapabilities>`,
  );
  const { media, events } = readServiceUrls(body);
  return {
    ...(media ? { media: sameHost(media, t.url) } : {}),
    ...(events ? { events: sameHost(events, t.url) } : {}),
  };
}

export async function getProfiles(t: CameraTarget, media: string): Promise<Profile[]> {
  return readProfiles(await call(t, media, `${TRT}/GetProfiles`, `<GetProfiles xmlns="${TRT}"/>`));
}

export async function getStreamUri(
  t: CameraTarget,
  media: string,
  token: string,
): Promise<string | undefined> {
  const body = await call(
    t,
    media,
    `${TRT}/GetStreamUri`,
    `<GetStreamUri xmlns="${TRT}"><StreamSetup>` +
      '<Stream xmlns="http://www.onvif.org/ver10/schema">RTP-Unicast</Stream>' +
      '<Transport xmlns="http://www.onvif.org/ver10/schema"><Protocol>RTSP</Protocol></Transport>' +
      `</StreamSetup><ProfileToken>${escapeXml(token)}</ProfileToken></GetStreamUri>`,
  );
  return readMediaUri(body, 'GetStreamUriResponse');
}

export async function getSnapshotUri(
  t: CameraTarget,
  media: string,
  token: string,
): Promise<string | undefined> {
  const body = await call(
    t,
    media,
    `${TRT}/GetSnapshotUri`,
    `<GetSnapshotUri xmlns="${TRT}"><ProfileToken>${escapeXml(token)}</ProfileToken></GetSnapshotUri>`,
  );
  return readMediaUri(body, 'GetSnapshotUriResponse');
}

/** A new PullPoint on the event service; its address, moved onto the device's host and port. */
export async function createPullPoint(
  t: CameraTarget,
  events: string,
  terminationSeconds: number,
): Promise<string> {
  const body = await call(
    t,
    events,
    `${TEV}/EventPortType/CreatePullPointSubscriptionRequest`,
    `<CreatePullPointSubscription xmlns="${TEV}">` +
      `<InitialTerminationTime>PT${terminationSeconds}S</InitialTerminationTime>` +
      '</CreatePullPointSubscription>',
  );
  const address = readSubscription(body);
  if (address === undefined) throw new PullPointAddressError();
  return sameHost(address, t.url);
}

const addressing = (action: string, to: string): string =>
  `<wsa:Action xmlns:wsa="${WSA}">${action}</wsa:Action><wsa:To xmlns:wsa="${WSA}">${escapeXml(to)}</wsa:To>`;

/** Waits up to `waitSeconds` on the camera for at most `limit` notifications. */
export async function pullMessages(
  t: CameraTarget,
  pullPoint: string,
  waitSeconds: number,
  limit: number,
): Promise<Notification[]> {
  const action = `${TEV}/PullPointSubscription/PullMessagesRequest`;
  const body = await call(
    t,
    pullPoint,
    action,
    `<PullMessages xmlns="${TEV}"><Timeout>PT${waitSeconds}S</Timeout>` +
      `<MessageLimit>${limit}</MessageLimit></PullMessages>`,
    addressing(action, pullPoint),
  );
  return readNotifications(body);
}

export async function renew(
  t: CameraTarget,
  pullPoint: string,
  terminationSeconds: number,
): Promise<void> {
  const action = `${WSNT}/SubscriptionManager/RenewRequest`;
  await call(
    t,
    pullPoint,
    action,
    `<Renew xmlns="${WSNT}"><TerminationTime>PT${terminationSeconds}S</TerminationTime></Renew>`,
    addressing(action, pullPoint),
  );
}

export async function unsubscribe(t: CameraTarget, pullPoint: string): Promise<void> {
  const action = `${WSNT}/SubscriptionManager/UnsubscribeRequest`;
  await call(t, pullPoint, action, `<Unsubscribe xmlns="${WSNT}"/>`, addressing(action, pullPoint));
}

/** A CreatePullPointSubscription answer without a usable address. */
export class PullPointAddressError extends Error {
  readonly code = 'EDGEBRIDGE_ONVIF_PULLPOINT_ADDRESS';
  constructor() {
    super('the camera gave no usable PullPoint address');
    this.name = 'PullPointAddressError';
  }
}

/**
 * `service` on the device service's scheme, host and port: a camera may name
 * an address behind NAT, and we never let a camera's answer send our
 * credentials to another host.
 */
function sameHost(service: URL, deviceUrl: string): string {
  const device = new URL(deviceUrl);
  const u = new URL(service.pathname + service.search, device.origin);
  return u.href;
}
