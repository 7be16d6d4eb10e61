// One MQTT 5 connection attempt (to the cloud or the node broker). Each connection is a fresh
// client without automatic reconnects: the sender decides when to try again
// and resends what the lost connection left unacknowledged itself, from the
// spool, in order (a client's own resend could overtake newer messages).
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { mqttDebugOptions } from '../dataplane/mqtt-debug.ts';

export interface Connection {
  client: MqttClient;
  connack: IConnackPacket;
}

/**
 * Connects once; rejects on refusal, timeout, close before CONNACK, or abort
 * (with its reason). `prepare` sees the client before any packet arrives (a
 * session's stored messages may follow the CONNACK at once).
 */
export function connectOnce(
  url: string,
  options: IClientOptions,
  signal: AbortSignal,
  prepare?: (client: MqttClient) => void,
): Promise<Connection> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      protocolVersion: 5,
      connectTimeout: 10_000,
      ...mqttDebugOptions(),
      ...options,
      reconnectPeriod: 0,
    });
    prepare?.(client);
    const cleanup = (): void => {
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error): void => {
      cleanup();
      // An error listener stays: a late socket error must not crash the process.
      client.on('error', () => undefined);
      client.end(true);
      reject(err);
    };
    const onConnect = (connack: IConnackPacket): void => {
      cleanup();
      resolve({ client, connack });
    };
    const onError = (err: Error): void => fail(err);
    const onClose = (): void => fail(new Error('connection closed before CONNACK'));
    const onAbort = (): void => fail(signal.reason as Error);
    client.once('connect', onConnect);
    client.once('error', onError);
    client.once('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
