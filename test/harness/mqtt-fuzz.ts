// Malformed MQTT packets, made deterministically from a seed: valid packets of
// every kind, then damaged (flipped bytes, truncated, wrong or overlong
// remaining lengths, wrong protocol names and levels, oversized fields, bad
// string lengths, reserved flags). The same seed gives the same packets.
import { connectPacket, encode, remainingLength } from './raw-mqtt.ts';
import { seededRandom } from './seeded-random.ts';

export class PacketFuzzer {
  readonly #random: () => number;
  readonly #credentials: { username: string; password: string };

  constructor(seed: number, credentials: { username: string; password: string }) {
    this.#random = seededRandom(seed);
    this.#credentials = credentials;
  }

  #int(max: number): number {
    return Math.floor(this.#random() * max);
  }

  #pick<T>(items: readonly T[]): T {
    return items[this.#int(items.length)] as T;
  }

  /** A valid CONNECT with the fuzzer's credentials. */
  validConnect(clientId: string): Buffer {
    return connectPacket({ clientId, clean: true, ...this.#credentials });
  }

  /** A valid packet of a random kind (after CONNECT, or a CONNECT itself). */
  validPacket(): Buffer {
    const topic = this.#pick([
      'edgebridge/v1/lab/cam/data',
      'edgebridge/v1/lab/cam/state',
      'edgebridge/v1/lab/+/data',
      '#',
      '$SYS/#',
      'a/b/c',
    ]);
    const messageId = 1 + this.#int(65535);
    return this.#pick<() => Buffer>([
      () => this.validConnect(`fuzz-${this.#int(1000)}`),
      () =>
        connectPacket({
          clientId: 'fuzz-v3',
          clean: true,
          protocolName: 'MQIsdp',
          protocolLevel: 3,
          ...this.#credentials,
        }),
      () =>
        encode({
          cmd: 'publish',
          topic: topic.replace(/[+#]/g, 'x'),
          payload: Buffer.alloc(this.#int(64), 0x61),
          qos: 0,
          retain: false,
          dup: false,
        }),
      () =>
        encode({
          cmd: 'publish',
          topic: topic.replace(/[+#]/g, 'x'),
          payload: 'p',
          qos: 1,
          messageId,
          retain: false,
          dup: false,
        }),
      () =>
        encode({
          cmd: 'publish',
          topic: topic.replace(/[+#]/g, 'x'),
          payload: 'p',
          qos: 2,
          messageId,
          retain: true,
          dup: false,
        }),
      () => encode({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos: this.#int(3) }] }),
      () => encode({ cmd: 'unsubscribe', messageId, unsubscriptions: [topic] }),
      () => encode({ cmd: 'puback', messageId }),
      () => encode({ cmd: 'pubrec', messageId }),
      () => encode({ cmd: 'pubrel', messageId }),
      () => encode({ cmd: 'pubcomp', messageId }),
      () => encode({ cmd: 'pingreq' }),
      () => encode({ cmd: 'disconnect' }),
    ])();
  }

  /** A damaged packet: a valid one with one or more mutations. */
  malformed(): Buffer {
    let packet = this.validPacket();
    const mutations = 1 + this.#int(3);
    for (let i = 0; i < mutations; i++) packet = this.#mutate(packet);
    return packet;
  }

  #mutate(packet: Buffer): Buffer {
    const p = Buffer.from(packet);
    return this.#pick<() => Buffer>([
      // Flipped bytes anywhere, header included.
      () => {
        for (let n = 1 + this.#int(4); n > 0; n--) p[this.#int(p.length)] = this.#int(256);
        return p;
      },
      // Truncated.
      () => p.subarray(0, this.#int(p.length)),
      // A remaining length that disagrees with the body (shorter or longer).
      () => Buffer.concat([p.subarray(0, 1), remainingLength(this.#int(300)), bodyOf(p)]),
      // A remaining-length varint that never ends, or ends at the 5th byte.
      () =>
        Buffer.concat([
          p.subarray(0, 1),
          Buffer.from([0xff, 0xff, 0xff, 0xff, this.#int(256)]),
          bodyOf(p),
        ]),
      // Reserved fixed-header flags, or a reserved packet type (0 or 15).
      () => {
        p[0] = this.#pick([(p[0] ?? 0) ^ (1 + this.#int(15)), 0x00, 0xf0, this.#int(256)]);
        return p;
      },
      // Wrong protocol names and levels.
      () =>
        connectPacket({
          clientId: 'fuzz-proto',
          clean: this.#random() < 0.5,
          protocolName: this.#pick(['MQTS', 'MQIsdp', '', 'mqtt', 'MQTT\u0000', 'X'.repeat(300)]),
          protocolLevel: this.#pick([0, 1, 2, 3, 5, 6, 7, 128, 255]),
          ...this.#credentials,
        }),
      // Oversized fields: client id, username, password, topic.
      () => {
        const big = 'x'.repeat(this.#pick([256, 4096, 65535]));
        return this.#pick<() => Buffer>([
          () => connectPacket({ clientId: big, clean: true, ...this.#credentials }),
          () => connectPacket({ clientId: 'fuzz-big', clean: true, username: big, password: big }),
          () =>
            encode({ cmd: 'publish', topic: big, payload: 'p', qos: 0, retain: false, dup: false }),
          () => encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: big, qos: 1 }] }),
        ])();
      },
      // A string length prefix past the end of the packet.
      () => {
        const at = 2 + this.#int(Math.max(1, p.length - 3));
        if (at + 1 < p.length) p.writeUInt16BE(0xffff - this.#int(256), at);
        return p;
      },
      // Random garbage of random length.
      () => Buffer.from(Array.from({ length: 1 + this.#int(64) }, () => this.#int(256))),
      // Two packets run together, the second one cut.
      () => Buffer.concat([p, this.validPacket().subarray(0, 1 + this.#int(8))]),
    ])();
  }
}

/** The packet's bytes after its fixed header (best effort on a damaged one). */
function bodyOf(packet: Buffer): Buffer {
  let i = 1;
  while (i < packet.length && i < 5 && ((packet[i] ?? 0) & 0x80) !== 0) i++;
  return packet.subarray(i + 1);
}
