// A message as the spool keeps it: validated, with its id, accounted size and
// checksum. Pure functions; the storage format is the store's business.
import { randomUUID } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { SpoolInvalidArgumentError } from './errors.ts';
import type { SpoolInput } from './spool.ts';

/** Bytes accounted per record beyond its strings and payload (numbers, row header). */
export const RECORD_OVERHEAD = 48;
/**
 * Most bytes a record's MQTT 5 properties (user properties and content type,
 * as stored) may take; a producer past it is refused (the uplink stores such a
 * message without them instead).
 */
export const MAX_PROPERTIES_BYTES = 16_384;

export interface SpoolRecord {
  id: string;
  key: string;
  topic: string;
  payload: Buffer;
  timestamp: number;
  expiresAt: number | undefined;
  priority: number;
  /** User properties and content type as stored (JSON), when the message has any. */
  properties: string | undefined;
  /** Accounted size: what counts against maxBytes. */
  size: number;
  /** CRC32 over the metadata and payload. */
  crc: number;
}

/** The size a record accounts for against maxBytes. */
export function recordSize(m: {
  id: string;
  key: string;
  topic: string;
  payload: Uint8Array;
  properties?: string | undefined;
}): number {
  return (
    RECORD_OVERHEAD +
    Buffer.byteLength(m.id) +
    Buffer.byteLength(m.key) +
    Buffer.byteLength(m.topic) +
    m.payload.byteLength +
    (m.properties === undefined ? 0 : Buffer.byteLength(m.properties))
  );
}

/** The stored form of a message's MQTT 5 properties: undefined when it has none. */
export function encodeProperties(m: {
  userProperties?: readonly (readonly [string, string])[] | undefined;
  contentType?: string | undefined;
}): string | undefined {
  const stored: { u?: readonly (readonly [string, string])[]; c?: string } = {};
  if (m.userProperties !== undefined && m.userProperties.length > 0) stored.u = m.userProperties;
  else if (m.contentType === undefined) return undefined;
  if (m.contentType !== undefined) stored.c = m.contentType;
  return JSON.stringify(stored);
}

/** The properties of a stored form; undefined when it is not one encodeProperties writes. */
export function decodeProperties(
  text: string,
): { userProperties?: [string, string][]; contentType?: string } | undefined {
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof stored !== 'object' || stored === null) return undefined;
  const { u, c } = stored as { u?: unknown; c?: unknown };
  const out: { userProperties?: [string, string][]; contentType?: string } = {};
  if (u !== undefined) {
    if (!isPairs(u)) return undefined;
    out.userProperties = u;
  }
  if (c !== undefined) {
    if (typeof c !== 'string') return undefined;
    out.contentType = c;
  }
  return out;
}

function isPairs(v: unknown): v is [string, string][] {
  return (
    Array.isArray(v) &&
    v.every(
      (p) =>
        Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string',
    )
  );
}

/**
 * Scratch bytes for one record's numbers, lengths and strings, so that the
 * checksum costs two CRC calls and no garbage (a reader checks every record).
 */
const scratch = Buffer.alloc(4096);
const numbers = new Float64Array(scratch.buffer, scratch.byteOffset, 7);
const NUMBERS_BYTES = 7 * 8;

/**
 * CRC32 over every field a reader is given, lengths included so that bytes
 * moving from one field to the next are caught too.
 */
export function checksum(m: {
  id: string;
  key: string;
  topic: string;
  payload: Uint8Array;
  timestamp: number;
  expiresAt: number | undefined;
  priority: number;
  properties?: string | undefined;
}): number {
  numbers[0] = m.timestamp;
  numbers[1] = m.expiresAt ?? -1;
  numbers[2] = m.priority;
  numbers[3] = m.id.length;
  numbers[4] = m.key.length;
  numbers[5] = m.topic.length;
  numbers[6] = m.payload.byteLength;
  let crc: number;
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  if (NUMBERS_BYTES + 3 * (m.id.length + m.key.length + m.topic.length) <= scratch.length) {
    let at = NUMBERS_BYTES;
    at += scratch.write(m.id, at);
    at += scratch.write(m.key, at);
    at += scratch.write(m.topic, at);
    crc = crc32(scratch.subarray(0, at));
  } else {
    crc = crc32(m.topic, crc32(m.key, crc32(m.id, crc32(scratch.subarray(0, NUMBERS_BYTES)))));
  }
  crc = crc32(m.payload, crc);
  // Only records with properties checksum them, so that records written before
  // properties were stored keep their checksums.
  return m.properties === undefined ? crc : crc32(m.properties, crc);
}

function isInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function invalid(index: number, what: string): SpoolInvalidArgumentError {
  return new SpoolInvalidArgumentError(`message ${index}: ${what}`);
}

/** Validates one input (it comes from a producer, so it is checked field by field) and seals it. */
export function toRecord(input: SpoolInput, index: number): SpoolRecord {
  const { id, key, topic, payload, timestamp, expiresAt, priority, userProperties, contentType } =
    input as Partial<Record<keyof SpoolInput, unknown>>;
  if (id !== undefined && (typeof id !== 'string' || id === '')) {
    throw invalid(index, 'id must be a non-empty string when given');
  }
  if (typeof key !== 'string' || key === '') throw invalid(index, 'key must be a non-empty string');
  if (typeof topic !== 'string' || topic === '') {
    throw invalid(index, 'topic must be a non-empty string');
  }
  if (!(payload instanceof Uint8Array)) throw invalid(index, 'payload must be a Buffer');
  if (!isInteger(timestamp)) throw invalid(index, 'timestamp must be an integer (ms)');
  if (expiresAt !== undefined && !isInteger(expiresAt)) {
    throw invalid(index, 'expiresAt must be an integer (ms) when given');
  }
  if (priority !== undefined && !isInteger(priority)) {
    throw invalid(index, 'priority must be an integer when given');
  }
  if (userProperties !== undefined && !isPairs(userProperties)) {
    throw invalid(index, 'userProperties must be [name, value] string pairs when given');
  }
  if (contentType !== undefined && typeof contentType !== 'string') {
    throw invalid(index, 'contentType must be a string when given');
  }
  const properties = encodeProperties({ userProperties, contentType });
  if (properties !== undefined && Buffer.byteLength(properties) > MAX_PROPERTIES_BYTES) {
    throw invalid(index, `properties take more than ${MAX_PROPERTIES_BYTES} bytes`);
  }
  const body = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const record: SpoolRecord = {
    id: id ?? randomUUID(),
    key,
    topic,
    payload: body,
    timestamp,
    expiresAt,
    priority: priority ?? 0,
    properties,
    size: 0,
    crc: 0,
  };
  record.size = recordSize(record);
  record.crc = checksum(record);
  return record;
}
