// The store-and-forward uplink, assembled from its configuration: spool,
// selection (configured filters, Discoveries' spec.uplink), sender to the
// cloud broker, optional downlink of commands, and, for an external node
// broker, a bridge-like source. The embedded broker calls `uplink.accept()`
// from its beforeAck hook.
import type { Logger } from 'pino';
import { openSpool, SpoolError, type Spool, type SpoolStats } from '../spool/index.ts';
import type { Registry } from '../registry/registry.ts';
import type { BackoffOptions } from '../util/backoff.ts';
import { CloudSender, type CloudSenderStats } from './cloud-sender.ts';
import type { UplinkConfig } from './config.ts';
import { UplinkSpoolError } from './errors.ts';
import { resolveConnectionOptions, type ReadValue } from './credentials.ts';
import { RegistryDeviceDirectory, type DeviceDirectory } from './device-directory.ts';
import { Downlink, type DownlinkStats, type NodePublisher } from './downlink.ts';
import { NodeBrokerSource, type NodeBrokerSourceStats } from './node-broker-source.ts';
import { createSelection } from './selection.ts';
import { TOPIC_ROOT } from '../dataplane/topics.ts';
import { expandPrefix } from './topics.ts';
import { Uplink, type UplinkCounters } from './uplink.ts';

export * from './errors.ts';
export { checkSpoolRoom, loadUplinkConfig, uplinkConfigFrom, type UplinkConfig } from './config.ts';
export type { NodeMessage } from './uplink.ts';
export type { NodePublisher } from './downlink.ts';
export type { DeviceDirectory, UplinkSpec } from './device-directory.ts';

/** Every figure of a running uplink, for metrics. */
export interface UplinkStats {
  uplink: UplinkCounters;
  sender: CloudSenderStats;
  downlink: DownlinkStats;
  spool: SpoolStats;
  /** Only with an external node broker (nodeBroker in the configuration). */
  source?: NodeBrokerSourceStats;
}

export interface UplinkDeps {
  /** This node's name (in the cloud topic prefix and client id). */
  node: string;
  log: Logger;
  /** Secrets (readValue) and Discoveries/Devices (spec.uplink); optional for configured filters only. */
  registry?: Registry;
  /** Replaces the registry-backed device directory (tests). */
  directory?: DeviceDirectory;
  /** Where downlink commands go when there is no nodeBroker client (the embedded broker). */
  nodePublisher?: NodePublisher;
  /** Reconnect backoff for the cloud and node broker connections (tests shorten it). */
  backoff?: BackoffOptions;
}

export interface RunningUplink {
  /** Stores a node-broker message for the cloud; see Uplink.accept. */
  readonly uplink: Uplink;
  readonly spool: Spool;
  stats(): UplinkStats;
  /** Settles when the uplink stops; rejects with a terminal UplinkConfigError (the spool keeps accepting). */
  readonly done: Promise<void>;
  /** Stops taking messages, lets durable ones be acknowledged, stops sending, closes the spool. Idempotent. */
  close(): Promise<void>;
}

/** Device data topics on the node broker, which Discoveries' spec.uplink may select. */
export const DEVICE_DATA_FILTER = `${TOPIC_ROOT}/+/+/data/#`;

/**
 * Opens the spool and starts the uplink. A damaged spool file is moved aside
 * and salvaged by the spool itself; a spool that cannot be opened at all
 * rejects with UplinkSpoolError, which leaves the rest of the agent running.
 */
export async function startUplink(config: UplinkConfig, deps: UplinkDeps): Promise<RunningUplink> {
  const log = deps.log.child({ component: 'uplink' });
  let spool: Spool;
  try {
    spool = await openSpool({
      dir: config.spool.dir,
      maxBytes: config.spool.maxBytes,
      onFull: config.spool.onFull,
      ...config.spool.sync,
      log,
    });
  } catch (err) {
    if (err instanceof SpoolError) throw new UplinkSpoolError(config.spool.dir, err);
    throw err;
  }
  const readValue: ReadValue | undefined = deps.registry?.readValue.bind(deps.registry);
  let registryDirectory: RegistryDeviceDirectory | undefined;
  let directory = deps.directory;
  if (directory === undefined && config.discoveries && deps.registry !== undefined) {
    registryDirectory = new RegistryDeviceDirectory(deps.registry, log);
    directory = registryDirectory;
    await registryDirectory.start();
  }
  const selection = createSelection({
    rules: config.topics,
    ...(config.discoveries && directory !== undefined ? { directory } : {}),
  });
  const uplink = new Uplink({ spool, selection, log });
  const prefix = expandPrefix(config.prefix, config.cluster, deps.node);
  const stop = new AbortController();

  let source: NodeBrokerSource | undefined;
  const nodeBroker = config.nodeBroker;
  if (nodeBroker !== undefined) {
    const filters = [
      ...(config.discoveries ? [DEVICE_DATA_FILTER] : []),
      ...config.topics.map((t) => t.filter),
    ];
    source = new NodeBrokerSource({
      url: nodeBroker.url,
      clientId: nodeBroker.clientId ?? `edgebridge-uplink-${deps.node}`,
      filters: [...new Set(filters)],
      accept: (msgs) => uplink.acceptAll(msgs),
      connectionOptions: () => resolveConnectionOptions(nodeBroker, 'nodeBroker', readValue),
      log,
      ...(deps.backoff !== undefined ? { backoff: deps.backoff } : {}),
    });
  }
  const viaSource = source;
  const downlink = new Downlink({
    prefix,
    maxPayloadBytes: config.downlink.maxPayloadBytes,
    publisher: () => {
      const client = viaSource?.client;
      if (client === undefined) return deps.nodePublisher;
      return {
        publish: async (topic, payload) => {
          await client.publishAsync(topic, payload, { qos: 1 });
        },
      };
    },
    log,
  });
  const sender = new CloudSender({
    spool,
    url: config.cloud.url,
    clientId: config.cloud.clientId ?? `edgebridge-${config.cluster}-${deps.node}`,
    keepaliveSeconds: config.cloud.keepaliveSeconds,
    maxInFlight: config.cloud.maxInFlight,
    prefix,
    connectionOptions: () => resolveConnectionOptions(config.cloud, 'cloud', readValue),
    log,
    ...(config.downlink.enabled ? { onConnect: (client) => downlink.attach(client) } : {}),
    ...(deps.backoff !== undefined ? { backoff: deps.backoff } : {}),
  });

  const report = (part: string) => (err: unknown) => {
    log.error(
      { code: (err as { code?: unknown }).code, err: (err as Error).message },
      `uplink: ${part} stopped for good; messages are still stored in the spool`,
    );
    throw err;
  };
  const sending = sender.run(stop.signal).catch(report('sending to the cloud'));
  const taking = source?.run(stop.signal).catch(report('taking from the node broker'));
  const done = Promise.all([sending, taking]).then(() => undefined);
  done.catch(() => undefined);

  let closing: Promise<void> | undefined;
  return {
    uplink,
    spool,
    done,
    stats: () => ({
      uplink: uplink.counters(),
      sender: sender.stats(),
      downlink: downlink.stats(),
      spool: spool.stats(),
      ...(viaSource !== undefined ? { source: viaSource.stats() } : {}),
    }),
    close: () =>
      (closing ??= (async () => {
        stop.abort(new Error('uplink closing'));
        await Promise.allSettled([sending, taking]);
        uplink.close();
        await registryDirectory?.close();
        await spool.close();
      })()),
  };
}
