import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { advertiseSharedSubscriptions } from '../../../src/dataplane/shared-packets.ts';

const v5 = { protocolVersion: 5 } as const;

/** Parses the packets in `bytes` as MQTT 5. */
function parse(bytes: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser(v5);
  const packets: mqttPacket.Packet[] = [];
  parser.on('packet', (p: mqttPacket.Packet) => packets.push(p));
  parser.parse(bytes);
  return packets;
}

describe('the CONNACK says shared subscriptions are available', () => {
  it('turns aedes’ “not available” into “available” in a successful MQTT 5 CONNACK, and keeps the rest', () => {
    const connack = mqttPacket.generate(
      {
        cmd: 'connack',
        sessionPresent: false,
        reasonCode: 0,
        properties: { sharedSubscriptionAvailable: false, maximumPacketSize: 4096 },
      },
      v5,
    );
    const publish = mqttPacket.generate(
      { cmd: 'publish', topic: 'a', payload: 'x', qos: 0, retain: false, dup: false },
      v5,
    );
    const [ack, next] = parse(advertiseSharedSubscriptions(Buffer.concat([connack, publish])));
    assert.equal(ack?.cmd, 'connack');
    assert.deepEqual(ack.cmd === 'connack' ? ack.properties : undefined, {
      sharedSubscriptionAvailable: true,
      maximumPacketSize: 4096,
    });
    assert.equal(next?.cmd, 'publish');
    // The input is not changed in place (mqtt-packet shares some of its buffers).
    const [again] = parse(connack);
    assert.equal(again?.cmd === 'connack' && again.properties?.sharedSubscriptionAvailable, false);
  });

  it('leaves MQTT 3.1.1 CONNACKs, refusals and other packets as they are', () => {
    const v4 = mqttPacket.generate(
      { cmd: 'connack', sessionPresent: false, returnCode: 0 },
      { protocolVersion: 4 },
    );
    const refused = mqttPacket.generate(
      {
        cmd: 'connack',
        sessionPresent: false,
        reasonCode: 0x87,
        properties: { sharedSubscriptionAvailable: false },
      },
      v5,
    );
    const publish = mqttPacket.generate(
      {
        cmd: 'publish',
        topic: '*',
        payload: Buffer.from([0x2a, 0]),
        qos: 0,
        retain: false,
        dup: false,
      },
      v5,
    );
    for (const bytes of [v4, refused, publish, Buffer.from([0x20]), Buffer.alloc(0)])
      assert.equal(advertiseSharedSubscriptions(bytes), bytes);
  });
});
