import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import {
  measurePublish,
  pubacks,
  writePublish,
  type PublishFields,
} from '../../../src/uplink/publish-encoder.ts';

function encode(p: PublishFields, packetId: number): Buffer {
  const m = measurePublish(p);
  const buf = Buffer.alloc(m.size);
  const end = writePublish(buf, 0, p, m, packetId);
  assert.equal(end, m.size, 'writePublish ends where measurePublish said');
  return buf;
}

function reference(p: PublishFields, packetId: number): Buffer {
  // Ours, then the publisher's (grouped by name, as mqtt-packet writes them).
  const user: Record<string, string | string[]> = { ...p.userProperties };
  for (const [key, value] of p.messageUserProperties ?? []) {
    const had = user[key];
    user[key] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  const properties: NonNullable<IPublishPacket['properties']> = { userProperties: user };
  if (p.messageExpiryInterval !== undefined) {
    properties.messageExpiryInterval = p.messageExpiryInterval;
  }
  if (p.contentType !== undefined) properties.contentType = p.contentType;
  return mqttPacket.generate(
    {
      cmd: 'publish',
      qos: 1,
      dup: false,
      retain: false,
      topic: p.topic,
      payload: p.payload,
      messageId: packetId,
      properties,
    },
    { protocolVersion: 5 },
  );
}

function parse(buf: Buffer): IPublishPacket[] {
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  const packets: IPublishPacket[] = [];
  const errors: Error[] = [];
  parser.on('packet', (p) => packets.push(p as IPublishPacket));
  parser.on('error', (e: Error) => errors.push(e));
  parser.parse(buf);
  assert.deepEqual(errors, []);
  return packets;
}

const cases: [string, PublishFields][] = [
  [
    'a typical uplink message',
    {
      topic: 'edgebridge/c1/node-1/edgebridge/v1/default/cam-1a2b/data',
      payload: Buffer.alloc(256, 0x5a),
      userProperties: { 'edgebridge-id': 'abc', 'edgebridge-timestamp': '1700000000000' },
    },
  ],
  [
    'a historical message with an expiry',
    {
      topic: 't',
      payload: Buffer.from('x'),
      userProperties: { 'edgebridge-id': 'id', 'edgebridge-historical': 'true' },
      messageExpiryInterval: 3600,
    },
  ],
  [
    "a publisher's own user properties (a name repeated) and content type",
    {
      topic: 'devices/cam-1/state',
      payload: Buffer.from('{"on":true}'),
      userProperties: { 'edgebridge-id': 'id', 'edgebridge-timestamp': '1700000000000' },
      messageUserProperties: [
        ['unit', 'C'],
        ['unit', 'F'],
        ['sensor', 'büro'],
      ],
      messageExpiryInterval: 60,
      contentType: 'application/json; charset=utf-8',
    },
  ],
  [
    'a content type alone',
    {
      topic: 't',
      payload: Buffer.from('x'),
      userProperties: { 'edgebridge-id': 'id' },
      contentType: '',
    },
  ],
  [
    'multi-byte UTF-8 in topic and properties',
    {
      topic: 'edgebridge/ü/€/𝄞',
      payload: Buffer.alloc(0),
      userProperties: { schlüssel: 'wert €' },
    },
  ],
];
// Remaining lengths around each Variable Byte Integer boundary.
for (const payloadBytes of [60, 61, 62, 16_300, 16_320, 16_330, 2_097_100, 2_097_200]) {
  cases.push([
    `a ${payloadBytes}-byte payload`,
    { topic: 'a/b', payload: Buffer.alloc(payloadBytes, 1), userProperties: { k: 'v' } },
  ]);
}

describe('uplink PUBLISH encoder', () => {
  for (const [name, fields] of cases) {
    it(`writes the bytes mqtt-packet writes: ${name}`, () => {
      for (const packetId of [1, 300, 65_535]) {
        assert.deepEqual(encode(fields, packetId), reference(fields, packetId));
      }
    });
  }

  it('writes several packets back to back that a parser reads as they were', () => {
    const fields = cases.map(([, f]) => f).slice(0, 5);
    const measured = fields.map(measurePublish);
    const buf = Buffer.alloc(measured.reduce((n, m) => n + m.size, 0));
    let at = 0;
    fields.forEach((f, i) => {
      const m = measured[i];
      assert.ok(m !== undefined);
      at = writePublish(buf, at, f, m, i + 1);
    });
    const packets = parse(buf);
    assert.equal(packets.length, fields.length);
    packets.forEach((p, i) => {
      const f = fields[i];
      assert.ok(f !== undefined);
      assert.equal(p.topic, f.topic);
      assert.equal(p.messageId, i + 1);
      assert.equal(p.qos, 1);
      assert.deepEqual(Buffer.from(p.payload), f.payload);
      assert.deepEqual(p.properties, parse(reference(f, i + 1))[0]?.properties);
    });
  });

  it("drops a publisher's edgebridge-* user properties: the agent's own cannot be spoofed", () => {
    const fields: PublishFields = {
      topic: 't',
      payload: Buffer.from('x'),
      userProperties: { 'edgebridge-id': 'real-id', 'edgebridge-timestamp': '1' },
      messageUserProperties: [
        ['edgebridge-id', 'forged'],
        ['EdgeBridge-Historical', 'true'],
        ['edgebridge-timestamp', '2'],
        ['keep', 'me'],
      ],
      contentType: 'text/plain',
    };
    const [packet] = parse(encode(fields, 7));
    assert.deepEqual(
      { ...packet?.properties?.userProperties },
      { 'edgebridge-id': 'real-id', 'edgebridge-timestamp': '1', keep: 'me' },
    );
    assert.equal(packet?.properties?.contentType, 'text/plain');
    // The same bytes as the packet without the forged ones.
    assert.deepEqual(
      encode(fields, 7),
      reference({ ...fields, messageUserProperties: [['keep', 'me']] }, 7),
    );
  });

  it('measures a packet beyond MQTT limits as too large, and refuses a topic over 65535 bytes', () => {
    const huge = { topic: 't', payload: Buffer.alloc(1), userProperties: {} };
    Object.defineProperty(huge.payload, 'length', { value: 268_435_456 });
    assert.equal(measurePublish(huge).size, Infinity);
    assert.throws(
      () =>
        measurePublish({ topic: 'x'.repeat(65_536), payload: Buffer.alloc(0), userProperties: {} }),
      RangeError,
    );
  });

  it('writes PUBACKs as mqtt-packet does', () => {
    const ids = [1, 258, 65_535];
    assert.deepEqual(
      pubacks(ids),
      Buffer.concat(
        ids.map((messageId) =>
          mqttPacket.generate({ cmd: 'puback', messageId }, { protocolVersion: 5 }),
        ),
      ),
    );
  });
});
