// Where shared subscriptions enter aedes 2.0.0-beta.1 (pinned), which answers
// every `$share/...` SUBSCRIBE with 0x9E before any hook of ours runs. An MQTT
// 5 client's SUBSCRIBE or UNSUBSCRIBE that names a shared filter is taken from
// its parser here: the shared filters are decided by us, the others go to
// aedes as a SUBSCRIBE of its own would (without its SUBACK), and one SUBACK or
// UNSUBACK answers the whole packet. PUBACKs are seen on their way to aedes.
// Every other packet goes to aedes untouched.
import type { EventEmitter } from 'node:events';
import type { Client } from 'aedes';
import mqttPacket, { type ISubscription } from 'mqtt-packet';
import { isSharedFilter, parseSharedFilter } from './shared-filter.ts';
import type { SharedSubscriptions } from './shared-subscriptions.ts';

/** SUBACK/UNSUBACK reason codes (MQTT 5). */
const NOT_AUTHORIZED = 0x87;
const TOPIC_FILTER_INVALID = 0x8f;
const QUOTA_EXCEEDED = 0x97;
const NO_SUBSCRIPTION_EXISTED = 0x11;
/** DISCONNECT reason: protocol error. */
const PROTOCOL_ERROR = 0x82;
const MAX_SUBSCRIPTION_ID = 268_435_455;

export interface SharedPacketsOptions {
  shared: SharedSubscriptions;
  /** Whether the client may subscribe to `filter`; a refusal is logged and counted by the caller. */
  maySubscribe: (client: Client, filter: string) => Promise<boolean>;
  /** A shared filter refused for its form or the client's quota: for the caller to log and count. */
  refused: (client: Client, topic: string, reason: string) => void;
}

/** What this file uses of an aedes 2.0.0-beta.1 client, beyond its types. */
interface ParsingClient extends Client {
  _parser: EventEmitter;
  /** Packets being handled; the client's socket is read again when it falls to 0. */
  _parsingBatch: number;
  _nextBatch: (err?: Error) => void;
  _keepaliveTimer: { refresh(): void } | null;
  connackSent: boolean;
  subscriptions: Record<string, unknown>;
  broker: { persistence: { removeSubscriptions(c: Client, topics: string[]): Promise<unknown> } };
}

interface SubscribePacket {
  cmd: 'subscribe';
  messageId?: number;
  subscriptions: (ISubscription & { subscriptionIdentifier?: number })[];
  properties?: { subscriptionIdentifier?: number };
}

interface UnsubscribePacket {
  cmd: 'unsubscribe';
  messageId?: number;
  unsubscriptions: string[];
}

type Packet = { cmd: string; messageId?: number } | SubscribePacket | UnsubscribePacket;

/** Puts the shared subscription layer between a new aedes client's parser and aedes. */
export function interceptSharedPackets(client: Client, opts: SharedPacketsOptions): void {
  const c = client as ParsingClient;
  const parser = c._parser;
  const [enqueue, ...others] = parser.listeners('packet') as ((packet: Packet) => void)[];
  if (enqueue === undefined || others.length > 0)
    throw new Error('aedes client parser is not as in aedes 2.0.0-beta.1');
  parser.removeListener('packet', enqueue);
  parser.on('packet', function onPacket(this: unknown, packet: Packet) {
    if (packet.cmd === 'puback') opts.shared.acknowledged(c, packet.messageId);
    // The version is unknown until aedes has taken in the CONNECT (a tick after it is read);
    // a packet before any CONNECT is aedes' to refuse.
    const v5OrUnknown = c.version === 5 || (c.version === null && c.connecting);
    if (!v5OrUnknown || !namesSharedFilter(packet)) {
      enqueue.call(this, packet);
      return;
    }
    // Counted like a packet aedes handles: the socket is not read again until it is answered.
    c._parsingBatch += 1;
    c._keepaliveTimer?.refresh();
    void connected(c)
      .then(async (ok) => {
        if (!ok) return;
        // A pipelined packet of a client that turned out to speak MQTT 3.1.1: aedes answers it, as before.
        if (c.version !== 5) {
          handOver(c, packet);
          return;
        }
        if (packet.cmd === 'subscribe') await subscribe(c, packet as SubscribePacket, opts);
        else await unsubscribe(c, packet as UnsubscribePacket, opts);
        if (!c.closed) c._nextBatch();
      })
      .catch((err: unknown) => c._nextBatch(err as Error));
  });
}

/** A SUBSCRIBE or UNSUBSCRIBE that names a `$share/...` filter. */
function namesSharedFilter(packet: Packet): boolean {
  if (packet.cmd === 'subscribe')
    return (packet as SubscribePacket).subscriptions.some((s) => isSharedFilter(s.topic));
  if (packet.cmd === 'unsubscribe')
    return (packet as UnsubscribePacket).unsubscriptions.some((t) => isSharedFilter(t));
  return false;
}

/** Resolves true once the CONNACK is out (packets before it wait, as aedes' do); false if the connection ends first. */
function connected(c: ParsingClient): Promise<boolean> {
  if (c.connackSent) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onConnected = (): void => {
      c.conn.off('close', onClose);
      resolve(true);
    };
    const onClose = (): void => {
      c.off('connected', onConnected);
      resolve(false);
    };
    c.once('connected', onConnected);
    c.conn.once('close', onClose);
  });
}

/** Lets aedes handle a SUBSCRIBE or UNSUBSCRIBE, and answer it (it has its packet identifier). */
function handOver(c: ParsingClient, packet: Packet): void {
  const done = (err?: Error): void => c._nextBatch(err);
  if (packet.cmd === 'subscribe')
    c.subscribe(packet as SubscribePacket & { messageId: number }, done);
  else c.unsubscribe(packet as UnsubscribePacket & { messageId: number }, done);
}

async function subscribe(
  c: ParsingClient,
  packet: SubscribePacket,
  opts: SharedPacketsOptions,
): Promise<void> {
  const subscriptionId = packet.properties?.subscriptionIdentifier;
  // [MQTT-3.8.3-1], [MQTT-3.8.3-4]: a bad identifier or No Local on a shared subscription.
  if (
    (subscriptionId !== undefined &&
      (subscriptionId < 1 || subscriptionId > MAX_SUBSCRIPTION_ID)) ||
    packet.subscriptions.some((s) => isSharedFilter(s.topic) && s.nl === true)
  ) {
    await new Promise<void>((resolve) => c.disconnect({ reasonCode: PROTOCOL_ERROR }, resolve));
    return;
  }
  const codes: number[] = [];
  const plain: ISubscription[] = [];
  const plainAt: number[] = [];
  await Promise.all(
    packet.subscriptions.map(async (sub, i) => {
      if (!isSharedFilter(sub.topic)) {
        plain.push(sub);
        plainAt.push(i);
        return;
      }
      codes[i] = await sharedCode(c, sub, subscriptionId, opts);
    }),
  );
  if (plain.length > 0) {
    // Without a packet identifier aedes subscribes, stores and sends retained messages, but writes no SUBACK.
    await new Promise<void>((resolve, reject) =>
      c.subscribe(
        {
          cmd: 'subscribe',
          subscriptions: plain,
          ...(packet.properties !== undefined ? { properties: packet.properties } : {}),
        },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    // aedes writes each subscription's granted QoS or refusal code back into it.
    plain.forEach((sub, j) => (codes[plainAt[j] ?? 0] = sub.qos));
  }
  answer(c, { cmd: 'suback', messageId: packet.messageId ?? 0, granted: codes });
}

/** The SUBACK code for one shared filter, joining its group when allowed. */
async function sharedCode(
  c: ParsingClient,
  sub: ISubscription,
  subscriptionId: number | undefined,
  opts: SharedPacketsOptions,
): Promise<number> {
  const parsed = parseSharedFilter(sub.topic);
  if (!parsed.ok) {
    opts.refused(c, sub.topic, parsed.reason);
    return TOPIC_FILTER_INVALID;
  }
  if (!(await opts.maySubscribe(c, parsed.filter))) return NOT_AUTHORIZED;
  const joined = await opts.shared.join(c, parsed.group, parsed.filter, {
    qos: sub.qos,
    rap: sub.rap === true,
    subscriptionId,
  });
  if (joined) return sub.qos;
  opts.refused(c, sub.topic, 'shared subscription quota exceeded');
  return QUOTA_EXCEEDED;
}

async function unsubscribe(
  c: ParsingClient,
  packet: UnsubscribePacket,
  opts: SharedPacketsOptions,
): Promise<void> {
  const plain = packet.unsubscriptions.filter((t) => !isSharedFilter(t));
  const codes = packet.unsubscriptions.map((topic) => {
    if (!isSharedFilter(topic))
      return c.subscriptions[topic] !== undefined ? 0 : NO_SUBSCRIPTION_EXISTED;
    const parsed = parseSharedFilter(topic);
    if (!parsed.ok) return TOPIC_FILTER_INVALID;
    return opts.shared.leave(c, parsed.group, parsed.filter) ? 0 : NO_SUBSCRIPTION_EXISTED;
  });
  if (plain.length > 0) {
    // aedes removes a kept session's subscriptions only for an UNSUBSCRIBE with an identifier: here, then.
    if (!c.clean) await c.broker.persistence.removeSubscriptions(c, plain);
    await new Promise<void>((resolve, reject) =>
      c.unsubscribe({ cmd: 'unsubscribe', unsubscriptions: plain }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  answer(c, { cmd: 'unsuback', messageId: packet.messageId ?? 0, granted: codes });
}

function answer(
  c: ParsingClient,
  packet: { cmd: 'suback' | 'unsuback'; messageId: number; granted: number[] },
): void {
  if (c.closed || c.conn.destroyed) return;
  mqttPacket.writeToStream(packet, c.conn, { protocolVersion: 5 });
}

/** CONNACK, and the MQTT 5 property that says whether shared subscriptions are available. */
const CONNACK = 0x20;
const SHARED_SUBSCRIPTION_AVAILABLE = 0x2a;

/**
 * The first bytes the broker writes to a client, with an MQTT 5 CONNACK's
 * "shared subscriptions not available" turned into "available". aedes
 * 2.0.0-beta.1 (pinned) always writes that property, first of all, with value
 * 0; its length does not change. Anything else is returned as it is.
 */
export function advertiseSharedSubscriptions(bytes: Buffer): Buffer {
  if (bytes[0] !== CONNACK) return bytes;
  const remaining = varint(bytes, 1);
  if (remaining === undefined) return bytes;
  const end = 1 + remaining.bytes + remaining.value;
  // Acknowledge flags, reason code 0 (success), then the properties' length.
  const reasonAt = 1 + remaining.bytes + 1;
  if (bytes[reasonAt] !== 0 || reasonAt + 1 >= end) return bytes;
  const properties = varint(bytes, reasonAt + 1);
  if (properties === undefined) return bytes;
  const at = reasonAt + 1 + properties.bytes;
  if (at + 1 >= end || bytes[at] !== SHARED_SUBSCRIPTION_AVAILABLE || bytes[at + 1] !== 0)
    return bytes;
  const fixed = Buffer.from(bytes);
  fixed[at + 1] = 1;
  return fixed;
}

/** An MQTT variable byte integer at `at`, and how many bytes it took. */
function varint(bytes: Buffer, at: number): { value: number; bytes: number } | undefined {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const byte = bytes[at + i];
    if (byte === undefined) return undefined;
    value += (byte & 0x7f) * 128 ** i;
    if ((byte & 0x80) === 0) return { value, bytes: i + 1 };
  }
  return undefined;
}
