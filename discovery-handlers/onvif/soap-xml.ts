// SOAP 1.2 envelopes for the ONVIF calls: the request we build, and a safe
// reading of the camera's answer. Pure. An answer is untrusted: it is
// size-checked by the caller, refused if it carries a DTD (SOAP forbids one;
// that is where entity expansion lives), parsed with entity processing off,
// and read through helpers that never throw on a missing or odd node.
import { XMLParser } from 'fast-xml-parser';

export const NS_SOAP = 'http://www.w3.org/2003/05/soap-envelope';

/** Characters of one text value we keep from an answer (a URI, a model name). */
export const MAX_TEXT = 2048;

/** Entity processing off (the five predefined entities are decoded by hand); values kept as text. */
const SAFE = {
  removeNSPrefix: true,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  parseTagValue: false,
  trimValues: true,
} as const;
const withAttributes = new XMLParser({
  ...SAFE,
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseAttributeValue: false,
});
const withoutAttributes = new XMLParser({ ...SAFE, ignoreAttributes: true });

/**
 * Untrusted XML (a SOAP answer, a WS-Discovery datagram) as a tree, or why
 * not; never throws. Attributes are kept, prefixed '@', only if asked.
 */
export function parseXml(
  xml: string,
  attributes: boolean,
): { ok: true; doc: unknown } | { ok: false; reason: string } {
  // SOAP 1.2 forbids a DTD; refusing one up front rules out entity expansion whatever the parser does.
  if (/<!(DOCTYPE|ENTITY)/i.test(xml)) return { ok: false, reason: 'a DTD (not allowed in SOAP)' };
  try {
    return { ok: true, doc: (attributes ? withAttributes : withoutAttributes).parse(xml) };
  } catch (err) {
    // A stack overflow on absurd nesting lands here too.
    return { ok: false, reason: `not XML (${(err as Error).message.slice(0, 100)})` };
  }
}

/** A SOAP answer's Body (children by local name), or a Fault, or why it is not one. */
export type SoapParse =
  | { ok: true; body: Record<string, unknown> }
  | { ok: true; fault: SoapFault }
  | { ok: false; reason: string };

export interface SoapFault {
  /** Local names of the Code/Value and Subcode/Value chain, e.g. ['Sender', 'NotAuthorized']. */
  codes: string[];
  reason: string;
}

/** The Body or Fault of a SOAP answer; never throws. */
export function parseSoap(xml: string): SoapParse {
  const parsed = parseXml(xml, true);
  if (!parsed.ok) return parsed;
  const body = child(child(parsed.doc, 'Envelope'), 'Body');
  if (!isObject(body)) return { ok: false, reason: 'not a SOAP envelope' };
  const fault = child(body, 'Fault');
  if (fault !== undefined) {
    const codes: string[] = [];
    let code = child(fault, 'Code');
    for (let depth = 0; code !== undefined && depth < 4; depth++) {
      const v = text(child(code, 'Value'));
      if (v !== '') codes.push(v.slice(v.indexOf(':') + 1));
      code = child(code, 'Subcode');
    }
    return { ok: true, fault: { codes, reason: text(child(child(fault, 'Reason'), 'Text')) } };
  }
  return { ok: true, body };
}

/** The first child `name` of `node` (an element repeated counts once), or undefined. */
export function child(node: unknown, name: string): unknown {
  const first = Array.isArray(node) ? (node as unknown[])[0] : node;
  return isObject(first) && Object.hasOwn(first, name) ? first[name] : undefined;
}

/** Every child `name` of `node`, at most `max`. */
export function children(node: unknown, name: string, max: number): unknown[] {
  const c = child(node, name);
  return (Array.isArray(c) ? (c as unknown[]) : c === undefined ? [] : [c]).slice(0, max);
}

/** An element's text (entities decoded, capped at MAX_TEXT), or '' when it has none. */
export function text(node: unknown): string {
  return decodeEntities(rawText(node).slice(0, MAX_TEXT));
}

/**
 * The text of an element as the parser gives it (entities not decoded): a
 * string, or the `#text` of an element that also has children or attributes.
 * A repeated element counts once (the first).
 */
export function rawText(node: unknown): string {
  const first = Array.isArray(node) ? (node as unknown[])[0] : node;
  if (typeof first === 'string') return first;
  if (isObject(first) && typeof first['#text'] === 'string') return first['#text'];
  return '';
}

/** An attribute's value (local name), entities decoded and capped, or ''. */
export function attribute(node: unknown, name: string): string {
  const first = Array.isArray(node) ? (node as unknown[])[0] : node;
  if (!isObject(first)) return '';
  const v = first[`@${name}`];
  return typeof v === 'string' ? decodeEntities(v.slice(0, MAX_TEXT)) : '';
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** The five predefined entities and character references (the parser's entity processing is off). */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(
    /&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|lt|gt|amp|quot|apos);/g,
    (whole, ref: string) => {
      if (!ref.startsWith('#')) return PREDEFINED[ref] ?? whole;
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    },
  );
}

/** Text made safe inside an XML element or attribute. */
export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );
}

/** A SOAP 1.2 envelope around `body` (namespaces declared by the body's elements), with `header` XML. */
export function envelope(body: string, header = ''): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<s:Envelope xmlns:s="${NS_SOAP}">` +
    (header === '' ? '' : `<s:Header>${header}</s:Header>`) +
    `<s:Body>${body}</s:Body></s:Envelope>`
  );
}
