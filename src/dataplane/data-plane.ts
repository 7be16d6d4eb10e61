// The node's data plane in one place: the node broker (embedded or external),
// client authentication and access control, and the per-Discovery device
// publishers. The agent command opens it before the agent and closes it after.
import type { Logger } from 'pino';
import type { DiscoveryPublisher } from '../agent/discovery-publisher.ts';
import type { Discovery } from '../api/types.ts';
import type { AgentMetrics } from '../metrics.ts';
import type { Registry } from '../registry/registry.ts';
import { readBoundedFile } from '../util/bounded-file.ts';
import { AccessControl } from './access.ts';
import { Authenticator } from './authenticator.ts';
import { defaultBrokerConfig, loadBrokerConfig, type BrokerConfig } from './broker-config.ts';
import { registryDeviceLabels } from './device-labels.ts';
import { BrokerDevicePublisher } from './device-publisher.ts';
import { EmbeddedBroker, type BeforeAck } from './embedded-broker.ts';
import { BrokerConfigError } from './errors.ts';
import type { NodeBroker } from './node-broker.ts';
import { CachingTokenReviewer } from './token-review.ts';

export type BrokerMode =
  | {
      kind: 'embedded';
      host: string;
      port: number;
      maxConnections: number;
      maxSessionExpirySeconds?: number;
      configFile?: string;
      config?: BrokerConfig;
    }
  | { kind: 'external'; url: string; caFile?: string };

export interface DataPlaneOptions {
  broker: BrokerMode;
  node: string;
  registry: Registry;
  log: Logger;
  metrics: AgentMetrics;
  /** Embedded broker only: awaited before any message is delivered or acknowledged (the uplink's spool). */
  beforeAck?: BeforeAck;
}

/** Room for the topic and MQTT headers within the packet limit. */
const HEADER_ROOM = 2048;
/** A certificate, key or CA bundle file is far smaller. */
const MAX_PEM_BYTES = 1024 * 1024;
/** Device payloads through an external broker (mosquitto's default limit is far larger). */
const EXTERNAL_MAX_PAYLOAD = 1024 * 1024;

export class DataPlane {
  readonly broker: NodeBroker;
  readonly #opts: DataPlaneOptions;
  readonly #maxPayloadBytes: number;
  #closing: Promise<void> | undefined;

  static async open(opts: DataPlaneOptions): Promise<DataPlane> {
    const log = opts.log.child({ part: 'broker' });
    if (opts.broker.kind === 'external') {
      const ca =
        opts.broker.caFile === undefined ? undefined : await readConfigFile(opts.broker.caFile);
      // Loaded only for an external broker: the MQTT client costs ~20 MB of memory.
      const { ExternalBroker } = await import('./external-broker.ts');
      const broker = new ExternalBroker({
        url: opts.broker.url,
        clientId: `edgebridge-agent-${opts.node}`,
        ...(ca !== undefined ? { ca } : {}),
        log,
      });
      return new DataPlane(opts, broker, EXTERNAL_MAX_PAYLOAD);
    }
    const config =
      opts.broker.config ??
      (opts.broker.configFile === undefined
        ? defaultBrokerConfig()
        : await loadBrokerConfig(opts.broker.configFile));
    const { registry } = opts;
    const tokens =
      registry.kind === 'kubernetes'
        ? new CachingTokenReviewer(
            { review: (token, audiences) => registry.reviewToken(token, audiences) },
            config.serviceAccounts.cacheSeconds * 1000,
          )
        : undefined;
    const authenticator = new Authenticator({
      config,
      readValue: (ref) => registry.readValue(ref),
      tokens,
    });
    const broker = await EmbeddedBroker.start({
      host: opts.broker.host,
      port: opts.broker.port,
      maxConnections: opts.broker.maxConnections,
      ...(opts.broker.maxSessionExpirySeconds !== undefined
        ? { maxSessionExpirySeconds: opts.broker.maxSessionExpirySeconds }
        : {}),
      ...(config.tls !== undefined ? { tls: await readTls(config.tls) } : {}),
      maxPacketBytes: config.maxPacketBytes,
      authenticate: (username, password) => authenticator.authenticate(username, password),
      access: new AccessControl(registryDeviceLabels(registry)),
      ...(opts.beforeAck !== undefined ? { beforeAck: opts.beforeAck } : {}),
      log,
      metrics: opts.metrics,
    });
    if (
      config.users.length === 0 &&
      config.serviceAccounts.grants.length === 0 &&
      config.anonymous === undefined
    )
      log.warn(
        'the broker config grants no client any device: only the agent can use the node broker',
      );
    return new DataPlane(opts, broker, config.maxPacketBytes - HEADER_ROOM);
  }

  private constructor(opts: DataPlaneOptions, broker: NodeBroker, maxPayloadBytes: number) {
    this.#opts = opts;
    this.broker = broker;
    this.#maxPayloadBytes = maxPayloadBytes;
  }

  /** The publisher for one Discovery's run: device ids become Device names in its namespace. */
  publisherFor(discovery: Discovery, shared: boolean): DiscoveryPublisher {
    const namespace = discovery.metadata.namespace ?? 'default';
    return new BrokerDevicePublisher({
      broker: this.broker,
      namespace,
      discovery: discovery.metadata.name,
      shared,
      node: this.#opts.node,
      maxPayloadBytes: this.#maxPayloadBytes,
      log: this.#opts.log.child({
        namespace,
        discovery: discovery.metadata.name,
        part: 'publisher',
      }),
      metrics: this.#opts.metrics,
    });
  }

  /** Closes the broker. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.broker.close();
    return this.#closing;
  }
}

async function readConfigFile(file: string): Promise<Buffer> {
  try {
    return await readBoundedFile(file, { maxBytes: MAX_PEM_BYTES });
  } catch (err) {
    throw new BrokerConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

async function readTls(
  tls: NonNullable<BrokerConfig['tls']>,
): Promise<{ cert: Buffer; key: Buffer; clientCa?: Buffer }> {
  const [cert, key, clientCa] = await Promise.all([
    readConfigFile(tls.certFile),
    readConfigFile(tls.keyFile),
    tls.clientCaFile === undefined ? undefined : readConfigFile(tls.clientCaFile),
  ]);
  return { cert, key, ...(clientCa !== undefined ? { clientCa } : {}) };
}
