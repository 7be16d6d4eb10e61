import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';

/** One device as a handler sees it. */
export interface DiscoveredDevice {
  /** Stable and unique within the handler (a serial, a URN, a bus path). */
  id: string;
  /** ENV_STYLE keys a workload needs (e.g. ONVIF_DEVICE_SERVICE_URL); never secrets. */
  properties: Record<string, string>;
  /** A few labels for label selectors (e.g. USB vendor/product). */
  labels?: Record<string, string>;
  deviceNodes?: { hostPath: string; containerPath?: string; permissions?: string }[];
  mounts?: { hostPath: string; containerPath: string; readOnly?: boolean }[];
}

/** Where a handler publishes a device's data, state and events (the node broker). */
export interface DevicePublisher {
  data(deviceId: string, payload: Buffer | string, stream?: string): void;
  state(deviceId: string, state: 'online' | 'offline'): void;
  event(deviceId: string, event: Record<string, unknown>): void;
  /** The node broker's URL (no credentials), for handlers whose devices may talk MQTT there; absent without one. */
  readonly brokerUrl?: string;
  /**
   * Calls `onCommand` with each command a client publishes on
   * `.../<device>/commands/<name>` for a device this run has published for;
   * resolves to a function that stops it. Absent without a node broker.
   */
  commands?(onCommand: CommandListener): Promise<() => Promise<void>>;
  /**
   * A new in-process MQTT connection to the node broker that may use the
   * sensors' own topics (everything outside edgebridge/); absent unless the
   * node broker is the agent's embedded one.
   */
  readonly sensorConnection?: () => Duplex;
}

/** A command for one of the handler's devices (by its device id), as the access rules let it through. */
export type CommandListener = (deviceId: string, name: string, payload: Buffer) => void;

export interface HandlerContext {
  /** Aborted when the Discovery goes away or changes; discover() must then return. */
  signal: AbortSignal;
  /** pino child with discovery, handler and node fields. */
  log: Logger;
  node: string;
  /** Resolved spec.properties, credentials included: never log them or put them in a device. */
  secrets: Record<string, string>;
  /** Polling handlers poll this often. */
  intervalSeconds: number;
  publish: DevicePublisher;
  /**
   * Reports a problem the handler carries on through (an unreadable source, say),
   * shown as the Discovery's Discovering=False condition; undefined clears it.
   * Optional so that a test may leave it out.
   */
  reportProblem?: (problem: string | undefined) => void;
}

/**
 * A discovery protocol. discover() yields the complete current device list,
 * and only when it changed; validate() rejects bad details with a message a
 * user can act on (an InvalidDetailsError), and such details are never retried.
 */
export interface DiscoveryHandler<Details = unknown> {
  readonly name: string;
  /** Network devices (seen by several nodes) are shared; local ones (USB) are not. */
  readonly shared: boolean;
  validate(details: unknown): Details;
  discover(details: Details, ctx: HandlerContext): AsyncIterable<DiscoveredDevice[]>;
}

/** Details that a handler cannot use; the Discovery gets DetailsValid=False with this message. */
export class InvalidDetailsError extends Error {
  readonly code = 'EDGEBRIDGE_INVALID_DETAILS';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidDetailsError';
  }
}
