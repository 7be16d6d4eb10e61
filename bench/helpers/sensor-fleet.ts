// The bench's sensors: several MQTT connections to the sensor broker sharing
// the work (sensor i always on connection i % n), QoS 0, pipelined: a publish
// is written without waiting for the previous one, so one slow socket does not
// pace the others and the producer can offer thousands of readings a second.
import { connectAsync, type MqttClient } from 'mqtt';

export class SensorFleet {
  readonly #clients: MqttClient[];
  /** Publishes handed to a socket. */
  sent = 0;

  private constructor(clients: MqttClient[]) {
    this.#clients = clients;
  }

  static async connect(url: string, connections: number, name: string): Promise<SensorFleet> {
    const clients = await Promise.all(
      Array.from({ length: connections }, (_, i) =>
        connectAsync(url, { clientId: `${name}-${i}`, clean: true, reconnectPeriod: 0 }),
      ),
    );
    // Writes queue in each client while its socket is busy; many waiting is expected here.
    for (const c of clients) c.setMaxListeners(0);
    return new SensorFleet(clients);
  }

  /** Sensor `i` publishes; QoS 0 unless `qos` says otherwise. */
  publish(i: number, topic: string, payload: string, opts: { retain?: boolean; qos?: 0 | 1 } = {}) {
    const client = this.#clients[i % this.#clients.length];
    if (client === undefined) return;
    client.publish(topic, payload, { qos: opts.qos ?? 0, retain: opts.retain ?? false });
    this.sent += 1;
  }

  /** Waits until every connection has written what it was given (a QoS 1 round trip on each). */
  async flush(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.publishAsync('bench/flush', '', { qos: 1 })));
  }

  async close(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.endAsync(true)));
  }
}
