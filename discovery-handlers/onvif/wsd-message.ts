// WS-Discovery (2005/04, the version ONVIF uses) messages: the Probe we send,
// and what a datagram from a peer says (ProbeMatches, Hello, Bye, Probe).
// Pure. Every datagram is untrusted: it is size-checked, refused if it
// carries a DTD (SOAP forbids them; that is where entity expansion lives),
// parsed with entity processing off, and every list and string in the result
// is capped, so a hostile peer costs bounded time and memory.
import { child, children, decodeEntities, isObject, parseXml, rawText } from './soap-xml.ts';

export const WSD_PORT = 3702;
export const WSD_GROUP = '239.255.255.250';
/** The largest datagram we read; UDP's own limit is 65,507 bytes of payload. */
export const MAX_DATAGRAM = 65_535;

const NS_SOAP = 'http://www.w3.org/2003/05/soap-envelope';
const NS_ADDRESSING = 'http://schemas.xmlsoap.org/ws/2004/08/addressing';
const NS_DISCOVERY = 'http://schemas.xmlsoap.org/ws/2005/04/discovery';
export const NS_NETWORK_WSDL = 'http://www.onvif.org/ver10/network/wsdl';
const TO_DISCOVERY = 'urn:schemas-xmlsoap-org:ws:2005:04:discovery';

/** Caps on what one message may contribute; more is cut, not refused. */
export const LIMITS = {
  matches: 256,
  scopes: 64,
  types: 32,
  xaddrs: 16,
  /** Characters of one scope, XAddr, type or endpoint address. */
  item: 1024,
};

/** One endpoint as a Hello or a ProbeMatch describes it. */
export interface WsdEndpoint {
  /** EndpointReference/Address, usually `urn:uuid:...`. */
  address: string;
  /** QNames as sent, e.g. `dn:NetworkVideoTransmitter`. */
  types: string[];
  scopes: string[];
  xaddrs: string[];
  metadataVersion?: number;
}

export type WsdMessage =
  | { kind: 'probe-matches'; messageId?: string; relatesTo?: string; matches: WsdEndpoint[] }
  | { kind: 'hello'; messageId?: string; endpoint: WsdEndpoint }
  | { kind: 'bye'; messageId?: string; address: string }
  | { kind: 'probe'; messageId?: string; types: string[]; scopes: string[] }
  /** A SOAP envelope with another body (Resolve, a fault, ...): nothing for us. */
  | { kind: 'other'; body: string };

export type ParseResult = { ok: true; message: WsdMessage } | { ok: false; reason: string };

/** What a datagram from a peer says, or why it says nothing usable. */
export function parseWsd(datagram: Buffer | string): ParseResult {
  if (datagram.length > MAX_DATAGRAM) return { ok: false, reason: 'datagram too large' };
  const text = typeof datagram === 'string' ? datagram : datagram.toString('utf8');
  const parsed = parseXml(text, false);
  if (!parsed.ok) return parsed;
  const envelope = child(parsed.doc, 'Envelope');
  const body = child(envelope, 'Body');
  if (!isObject(body)) return { ok: false, reason: 'not a SOAP envelope' };
  const header = child(envelope, 'Header');
  const messageId = capped(rawText(child(header, 'MessageID')));
  const relatesTo = capped(rawText(child(header, 'RelatesTo')));
  const ids = { ...(messageId ? { messageId } : {}) };

  const matches = child(body, 'ProbeMatches');
  if (matches !== undefined) {
    const list = children(matches, 'ProbeMatch', LIMITS.matches);
    return {
      ok: true,
      message: {
        kind: 'probe-matches',
        ...ids,
        ...(relatesTo ? { relatesTo } : {}),
        matches: list.map(endpoint).filter((e) => e !== undefined),
      },
    };
  }
  const hello = child(body, 'Hello');
  if (hello !== undefined) {
    const e = endpoint(hello);
    return e === undefined
      ? { ok: false, reason: 'a Hello without an endpoint address' }
      : { ok: true, message: { kind: 'hello', ...ids, endpoint: e } };
  }
  const bye = child(body, 'Bye');
  if (bye !== undefined) {
    const address = endpointAddress(bye);
    return address === undefined
      ? { ok: false, reason: 'a Bye without an endpoint address' }
      : { ok: true, message: { kind: 'bye', ...ids, address } };
  }
  const probe = child(body, 'Probe');
  if (probe !== undefined) {
    return {
      ok: true,
      message: {
        kind: 'probe',
        ...ids,
        types: list(child(probe, 'Types'), LIMITS.types),
        scopes: list(child(probe, 'Scopes'), LIMITS.scopes),
      },
    };
  }
  return { ok: true, message: { kind: 'other', body: Object.keys(body)[0]?.slice(0, 64) ?? '' } };
}

/** Whether `types` includes NetworkVideoTransmitter, whatever its namespace prefix. */
export function isVideoTransmitter(types: readonly string[]): boolean {
  return types.some((t) => t.slice(t.indexOf(':') + 1) === 'NetworkVideoTransmitter');
}

/** A Probe for ONVIF devices (dn:NetworkVideoTransmitter), sent to the multicast group or one address. */
export function probeMessage(messageId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<s:Envelope xmlns:s="${NS_SOAP}" xmlns:a="${NS_ADDRESSING}" xmlns:d="${NS_DISCOVERY}" xmlns:dn="${NS_NETWORK_WSDL}">` +
    '<s:Header>' +
    `<a:Action s:mustUnderstand="1">${NS_DISCOVERY}/Probe</a:Action>` +
    `<a:MessageID>${messageId}</a:MessageID>` +
    `<a:To s:mustUnderstand="1">${TO_DISCOVERY}</a:To>` +
    '</s:Header>' +
    '<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>' +
    '</s:Envelope>'
  );
}

function endpoint(node: unknown): WsdEndpoint | undefined {
  const address = endpointAddress(node);
  if (address === undefined) return undefined;
  const version = Number(rawText(child(node, 'MetadataVersion')));
  return {
    address,
    types: list(child(node, 'Types'), LIMITS.types),
    scopes: list(child(node, 'Scopes'), LIMITS.scopes),
    xaddrs: list(child(node, 'XAddrs'), LIMITS.xaddrs),
    ...(Number.isSafeInteger(version) && version >= 0 ? { metadataVersion: version } : {}),
  };
}

function endpointAddress(node: unknown): string | undefined {
  return capped(rawText(child(child(node, 'EndpointReference'), 'Address'))) || undefined;
}

/** A whitespace-separated list (Types, Scopes, XAddrs), entities decoded, capped. */
function list(node: unknown, max: number): string[] {
  return rawText(node)
    .split(/\s+/)
    .filter((s) => s.length > 0 && s.length <= LIMITS.item)
    .slice(0, max)
    .map(decodeEntities);
}

function capped(s: string): string {
  return decodeEntities(s.slice(0, LIMITS.item));
}
