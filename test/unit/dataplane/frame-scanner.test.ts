import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { PacketTooLargeError } from '../../../src/dataplane/errors.ts';
import { FrameScanner } from '../../../src/dataplane/packet-size-guard.ts';

function publish(bytes: number): Buffer {
  return mqttPacket.generate({
    cmd: 'publish',
    topic: 't',
    payload: Buffer.alloc(bytes),
    qos: 0,
    retain: false,
    dup: false,
  });
}

describe('the MQTT frame scanner', () => {
  it('passes packets within the limit, however the stream is cut', () => {
    const stream = Buffer.concat([publish(10), publish(200), publish(0), publish(1000)]);
    for (const cut of [1, 2, 3, 7, 100, stream.length]) {
      const scanner = new FrameScanner(1100);
      for (let i = 0; i < stream.length; i += cut)
        assert.equal(scanner.feed(stream.subarray(i, i + cut)), undefined);
    }
  });

  it('stops at the header of a packet over the limit, before its body arrives', () => {
    const big = publish(5000);
    const scanner = new FrameScanner(1024);
    assert.equal(scanner.feed(publish(10)), undefined);
    const err = scanner.feed(big.subarray(0, 4));
    assert.ok(err instanceof PacketTooLargeError);
    assert.equal(err.size, big.length);
  });

  it('refuses a remaining length of more than four bytes', () => {
    const scanner = new FrameScanner(1 << 30);
    assert.match(
      String(scanner.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))),
      /malformed/,
    );
  });
});
