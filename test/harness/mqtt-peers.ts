// MQTT clients that play the parts around the uplink in tests and benchmarks:
// a cloud-side consumer that records what arrives, and a device-side producer
// that publishes numbered messages with QoS 1 and keeps what was acknowledged.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface Arrival {
  topic: string;
  payload: string;
  id: string | undefined;
  historical: boolean;
}

/** A persistent-session QoS 1 subscriber that records every arrival; survives broker restarts. */
export interface Recorder {
  readonly arrivals: Arrival[];
  /** Distinct messages seen, by `device:n` (padding removed). */
  readonly distinct: Set<string>;
  close(): Promise<void>;
}

export async function recordArrivals(
  url: string,
  filter: string,
  options: IClientOptions = {},
): Promise<Recorder> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId: `recorder-${Math.random().toString(16).slice(2)}`,
    clean: false,
    properties: { sessionExpiryInterval: 3600, receiveMaximum: 1000 },
    reconnectPeriod: 200,
    ...options,
  });
  client.on('error', () => undefined);
  const arrivals: Arrival[] = [];
  const distinct = new Set<string>();
  client.on('message', (topic, payload, packet) => {
    const props = packet.properties?.userProperties ?? {};
    const id = props['edgebridge-id'];
    const text = payload.toString();
    arrivals.push({
      topic,
      payload: text,
      id: typeof id === 'string' ? id : undefined,
      historical: props['edgebridge-historical'] === 'true',
    });
    distinct.add(keyOf(text));
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    arrivals,
    distinct,
    close: () => client.endAsync(true),
  };
}

/** Publishes `device:n` payloads on device data topics with QoS 1; remembers which were acknowledged. */
export class Producer {
  readonly acked = new Set<string>();
  readonly #client: MqttClient;

  private constructor(client: MqttClient) {
    this.#client = client;
  }

  static async connect(url: string): Promise<Producer> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: 5,
      reconnectPeriod: 200,
      properties: { receiveMaximum: 1000 },
    });
    client.on('error', () => undefined);
    return new Producer(client);
  }

  /** Publishes message `n` of `device` in namespace `default`; resolves on PUBACK (false if it failed). */
  async publish(device: string, n: number, padTo = 0): Promise<boolean> {
    const text = `${device}:${n}`;
    const payload = padTo > text.length ? `${text}:${'x'.repeat(padTo - text.length - 1)}` : text;
    try {
      await this.#client.publishAsync(`edgebridge/v1/default/${device}/data`, payload, { qos: 1 });
      this.acked.add(text);
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.#client.endAsync(true);
  }
}

/** The `device:n` key of a payload made by Producer (padding removed). */
export function keyOf(payload: string): string {
  const [device = '', n = ''] = payload.split(':');
  return `${device}:${n}`;
}

/**
 * Checks that, per device, the first arrival of each message is in publish
 * order; returns how many arrivals were duplicates.
 */
export function checkOrder(arrivals: readonly Arrival[]): {
  duplicates: number;
  outOfOrder: string[];
} {
  const seen = new Set<string>();
  const last = new Map<string, number>();
  const outOfOrder: string[] = [];
  let duplicates = 0;
  for (const a of arrivals) {
    const key = keyOf(a.payload);
    if (seen.has(key)) {
      duplicates += 1;
      continue;
    }
    seen.add(key);
    const [device = '', n = '0'] = key.split(':');
    const prev = last.get(device) ?? -1;
    if (Number(n) < prev) outOfOrder.push(`${key} after ${device}:${prev}`);
    last.set(device, Math.max(prev, Number(n)));
  }
  return { duplicates, outOfOrder };
}

/** Polls `check` every 50 ms until true; fails after `timeoutMs` with `what` (and `detail()` if given). */
export async function waitFor(
  what: string,
  check: () => boolean,
  timeoutMs = 60_000,
  detail?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
