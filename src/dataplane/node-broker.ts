import type { Duplex } from 'node:stream';

/** A message on the node broker. */
export interface BrokerMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
}

export interface PublishOptions {
  qos?: 0 | 1 | 2;
  retain?: boolean;
}

/**
 * The node-local MQTT broker that pods use: embedded in the agent, or an
 * external one (a mosquitto sidecar) that the agent is a client of. In-agent
 * code (handlers, uplink) uses it through this, as an identity no client can take.
 */
export interface NodeBroker {
  /** Where clients connect, e.g. mqtt://127.0.0.1:1883. */
  readonly url: string;
  /** Resolves once the broker has taken the message (and, embedded, beforeAck has resolved). */
  publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<void>;
  /** Sees every message matching `filter` (any client's, and the agent's own); resolves to an unsubscribe. */
  subscribe(
    filter: string,
    onMessage: (message: BrokerMessage) => void,
  ): Promise<() => Promise<void>>;
  /**
   * An in-process MQTT connection for the agent's own sensor client (the mqtt
   * handler's): it may use every topic outside edgebridge/ and none under it.
   * Absent where the broker is not the agent's (an external one).
   */
  readonly connectSensorClient?: () => Duplex;
  /** Stops accepting clients and work, lets queued work finish, then disconnects everyone. Idempotent. */
  close(): Promise<void>;
  /** Drops everything now. Idempotent. */
  destroy(): Promise<void>;
}

/** The clientId that in-agent publishes carry (e.g. in beforeAck); clients may not connect with it. */
export const INTERNAL_CLIENT_ID = '$edgebridge/agent';
