import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';

/** Connects, subscribes to `topic` and collects every message payload it receives. */
async function subscriber(
  url: string,
  topic: string,
): Promise<{ client: mqtt.MqttClient; received: string[] }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 });
  const received: string[] = [];
  client.on('message', (_t, payload) => received.push(payload.toString()));
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, received };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('mosquitto peer', () => {
  // Started by the first test that needs them (not in before()), so that a missing
  // mosquitto fails the tests with MissingPeerError instead of cancelling them.
  let started: Promise<{ node: Mosquitto; cloud: Mosquitto }> | undefined;
  const brokers = (): Promise<{ node: Mosquitto; cloud: Mosquitto }> =>
    (started ??= (async () => {
      const node = await startMosquitto({ name: 'node' });
      try {
        return { node, cloud: await startMosquitto({ name: 'cloud' }) };
      } catch (err) {
        await node.stop();
        throw err;
      }
    })());
  const clients: mqtt.MqttClient[] = [];

  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    const b = await started?.catch(() => undefined);
    await Promise.all([b?.node.stop(), b?.cloud.stop()]);
  });

  it('delivers a QoS 1 message published to the node broker', async () => {
    const { node } = await brokers();
    const sub = await subscriber(node.url, 'edgebridge/v1/test/dev/data');
    clients.push(sub.client);
    const pub = await mqtt.connectAsync(node.url, { reconnectPeriod: 0 });
    clients.push(pub);
    // publishAsync resolves on PUBACK, so the broker has taken the message.
    const packet = await pub.publishAsync('edgebridge/v1/test/dev/data', 'hello-node', { qos: 1 });
    assert.equal(packet?.cmd, 'publish');
    await waitFor('the subscriber to receive hello-node', () =>
      sub.received.includes('hello-node'),
    );
    assert.deepEqual(sub.received, ['hello-node']);
  });

  it('runs node and cloud brokers on distinct ports, independent of each other', async () => {
    const { node, cloud } = await brokers();
    assert.notEqual(node.port, cloud.port);
    assert.notEqual(node.pid, cloud.pid);
    const onNode = await subscriber(node.url, 'iso/#');
    const onCloud = await subscriber(cloud.url, 'iso/#');
    clients.push(onNode.client, onCloud.client);
    const pubCloud = await mqtt.connectAsync(cloud.url, { reconnectPeriod: 0 });
    const pubNode = await mqtt.connectAsync(node.url, { reconnectPeriod: 0 });
    clients.push(pubCloud, pubNode);
    await pubCloud.publishAsync('iso/x', 'to-cloud', { qos: 1 });
    await pubNode.publishAsync('iso/x', 'to-node', { qos: 1 });
    await waitFor(
      'both subscribers to receive their message',
      () => onNode.received.length > 0 && onCloud.received.length > 0,
    );
    // A round trip on each connection after the publishes: anything stray would have arrived by now.
    await onNode.client.subscribeAsync('iso/sync', { qos: 1 });
    await onCloud.client.subscribeAsync('iso/sync', { qos: 1 });
    assert.deepEqual(onNode.received, ['to-node']);
    assert.deepEqual(onCloud.received, ['to-cloud']);
  });

  it('restarts on the same port and keeps retained messages in its data directory', async () => {
    const { node } = await brokers();
    const port = node.port;
    const pub = await mqtt.connectAsync(node.url, { reconnectPeriod: 0 });
    await pub.publishAsync('keep/me', 'retained-1', { qos: 1, retain: true });
    await pub.endAsync();
    const oldPid = node.pid;
    await node.restart();
    assert.equal(node.port, port);
    assert.notEqual(node.pid, oldPid);
    const sub = await subscriber(node.url, 'keep/me');
    clients.push(sub.client);
    await waitFor('the retained message after restart', () => sub.received.includes('retained-1'));
  });
});
