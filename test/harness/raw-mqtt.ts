// MQTT spoken byte by byte, for tests that send what a well-behaved client
// library would not: packets it refuses to build, and damaged ones.
import { connect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

/** host and port of an mqtt://host:port URL. */
function address(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** A TCP connection to the broker, open once this resolves; errors are swallowed (the broker may reset it). */
export async function openSocket(url: string): Promise<Socket> {
  const socket = connect(address(url));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('close', () => reject(new Error(`cannot connect to ${url}`)));
  });
  return socket;
}

/** The bytes of an MQTT packet (protocolVersion 4 unless the packet says otherwise). */
export function encode(packet: Record<string, unknown>): Buffer {
  return mqttPacket.generate(packet as unknown as Packet);
}

/** Sends bytes and resolves with the first packet the broker answers with, or 'closed'. */
export async function firstAnswer(url: string, bytes: Buffer): Promise<Packet | 'closed'> {
  const socket = await openSocket(url);
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  try {
    return await new Promise<Packet | 'closed'>((resolve) => {
      parser.once('packet', resolve);
      parser.once('error', () => resolve('closed'));
      socket.on('data', (chunk: Buffer) => parser.parse(chunk));
      socket.once('close', () => resolve('closed'));
      socket.write(bytes);
    });
  } finally {
    socket.destroy();
  }
}

/** A UTF-8 string field: two length bytes, then the bytes. */
function field(text: string | Buffer): Buffer {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** The remaining-length varint of MQTT's fixed header. */
export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/**
 * A CONNECT packet with these fields, encoded by hand (mqtt-packet refuses to
 * build some that a broker must refuse, such as an empty client id without a
 * clean session); protocol MQTT 3.1.1 unless given.
 */
export function connectPacket(fields: {
  clientId: string;
  clean: boolean;
  username?: string;
  password?: string;
  protocolName?: string;
  protocolLevel?: number;
}): Buffer {
  const flags =
    (fields.username !== undefined ? 0x80 : 0) |
    (fields.password !== undefined ? 0x40 : 0) |
    (fields.clean ? 0x02 : 0);
  const body = Buffer.concat([
    field(fields.protocolName ?? 'MQTT'),
    Buffer.from([fields.protocolLevel ?? 4, flags, 0, 30]),
    field(fields.clientId),
    ...(fields.username !== undefined ? [field(fields.username)] : []),
    ...(fields.password !== undefined ? [field(fields.password)] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}
