// MQTT 5 QoS 1 PUBLISH packets, and the PUBACKs the uplink sends its node
// broker, written straight into one buffer for a whole batch. mqtt-packet,
// which mqtt.js uses, allocates a small Buffer for every property id and
// length it writes; in a replay that garbage cost more CPU than the messages.
// The uplink sends one shape of packet (topic, packet id, user properties,
// optional expiry and content type, payload), so it is encoded here; the unit test holds the
// bytes equal to mqtt-packet's for the same packet.

/** The fields of one outgoing PUBLISH. */
export interface PublishFields {
  topic: string;
  payload: Buffer;
  /** MQTT 5 user properties, written in key order. */
  userProperties: Record<string, string>;
  /** Message Expiry Interval in seconds, when the message has one. */
  messageExpiryInterval?: number | undefined;
  /**
   * The publisher's own user properties, written after ours, in order; those
   * named edgebridge-* are dropped, so that a client cannot pass off its own
   * edgebridge-id or edgebridge-timestamp as the agent's.
   */
  messageUserProperties?: readonly (readonly [string, string])[] | undefined;
  /** The publisher's Content Type. */
  contentType?: string | undefined;
}

const PUBLISH_QOS1 = 0x32;
const PROP_MESSAGE_EXPIRY = 0x02;
const PROP_CONTENT_TYPE = 0x03;
const PROP_USER = 0x26;
/** MQTT's Variable Byte Integer tops out here. */
const MAX_VARINT = 268_435_455;

function varIntSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

function writeVarInt(buf: Buffer, at: number, n: number): number {
  let v = n;
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) byte |= 0x80;
    buf[at++] = byte;
  } while (v > 0);
  return at;
}

/** A UTF-8 string with its two-byte length; the length is filled in after writing. */
function writeString(buf: Buffer, at: number, s: string): number {
  const n = buf.write(s, at + 2, 'utf8');
  buf.writeUInt16BE(n, at);
  return at + 2 + n;
}

/** Whether a publisher's user property is one of the agent's own names (ASCII case ignored). */
function isReserved(name: string): boolean {
  return (
    name.length >= RESERVED_PREFIX.length &&
    name.slice(0, RESERVED_PREFIX.length).toLowerCase() === RESERVED_PREFIX
  );
}
const RESERVED_PREFIX = 'edgebridge-';

/** Bytes of the properties section's content (without its own length). */
function propertiesLength(p: PublishFields): number {
  let n = 0;
  for (const key in p.userProperties) {
    n += 5 + Buffer.byteLength(key) + Buffer.byteLength(p.userProperties[key] ?? '');
  }
  if (p.messageUserProperties !== undefined) {
    for (const [key, value] of p.messageUserProperties) {
      if (!isReserved(key)) n += 5 + Buffer.byteLength(key) + Buffer.byteLength(value);
    }
  }
  if (p.messageExpiryInterval !== undefined) n += 5;
  if (p.contentType !== undefined) n += 3 + Buffer.byteLength(p.contentType);
  return n;
}

/** A measured packet: what writePublish needs besides the fields. */
export interface Measured {
  /** Whole packet, fixed header included. */
  size: number;
  remaining: number;
  properties: number;
}

/** Measures one packet; throws if a string is longer than MQTT allows. */
export function measurePublish(p: PublishFields): Measured {
  const topic = Buffer.byteLength(p.topic);
  if (topic > 65_535) throw new RangeError('MQTT topic longer than 65535 bytes');
  for (const [key, value] of p.messageUserProperties ?? []) {
    if (Buffer.byteLength(key) > 65_535 || Buffer.byteLength(value) > 65_535) {
      throw new RangeError('MQTT user property longer than 65535 bytes');
    }
  }
  if (p.contentType !== undefined && Buffer.byteLength(p.contentType) > 65_535) {
    throw new RangeError('MQTT content type longer than 65535 bytes');
  }
  const properties = propertiesLength(p);
  const remaining = 2 + topic + 2 + varIntSize(properties) + properties + p.payload.length;
  // Beyond MQTT's largest packet: sized so that any broker limit refuses it.
  if (remaining > MAX_VARINT) return { size: Infinity, remaining, properties };
  return { size: 1 + varIntSize(remaining) + remaining, remaining, properties };
}

/** Writes one packet at `at` (room measured by measurePublish); returns the offset after it. */
export function writePublish(
  buf: Buffer,
  at: number,
  p: PublishFields,
  m: Measured,
  packetId: number,
): number {
  buf[at++] = PUBLISH_QOS1;
  at = writeVarInt(buf, at, m.remaining);
  at = writeString(buf, at, p.topic);
  buf.writeUInt16BE(packetId, at);
  at += 2;
  at = writeVarInt(buf, at, m.properties);
  for (const key in p.userProperties) {
    buf[at++] = PROP_USER;
    at = writeString(buf, at, key);
    at = writeString(buf, at, p.userProperties[key] ?? '');
  }
  if (p.messageUserProperties !== undefined) {
    for (const [key, value] of p.messageUserProperties) {
      if (isReserved(key)) continue;
      buf[at++] = PROP_USER;
      at = writeString(buf, at, key);
      at = writeString(buf, at, value);
    }
  }
  if (p.messageExpiryInterval !== undefined) {
    buf[at++] = PROP_MESSAGE_EXPIRY;
    buf.writeUInt32BE(p.messageExpiryInterval, at);
    at += 4;
  }
  if (p.contentType !== undefined) {
    buf[at++] = PROP_CONTENT_TYPE;
    at = writeString(buf, at, p.contentType);
  }
  return at + p.payload.copy(buf, at);
}

/** MQTT 5 PUBACKs (reason Success, no properties) for `packetIds`, back to back, as mqtt-packet writes them. */
export function pubacks(packetIds: readonly number[]): Buffer {
  const buf = Buffer.allocUnsafe(6 * packetIds.length);
  let at = 0;
  for (const id of packetIds) {
    buf[at] = 0x40;
    buf[at + 1] = 4;
    buf.writeUInt16BE(id, at + 2);
    buf[at + 4] = 0;
    buf[at + 5] = 0;
    at += 6;
  }
  return buf;
}
