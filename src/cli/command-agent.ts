import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { Agent } from '../agent/agent.ts';
import { discardingPublisher } from '../agent/discarding-publisher.ts';
import { HealthMonitor } from '../agent/health.ts';
import { RegistryReachability } from '../agent/registry-reachability.ts';
import { DEFAULT_SHUTDOWN_TIMEOUT_S, Shutdown } from '../agent/shutdown.ts';
import {
  DEFAULT_MAX_PACKET_BYTES,
  defaultBrokerConfig,
  loadBrokerConfig,
} from '../dataplane/broker-config.ts';
import { DataPlane } from '../dataplane/data-plane.ts';
import type { RunningUplink, UplinkConfig } from '../uplink/index.ts';
import type { RunningDra } from '../dra/start-dra.ts';
import { createLogger } from '../log.ts';
import { AgentMetrics } from '../metrics.ts';
import { observeUplink, uplinkOffGauge } from '../uplink/metrics.ts';
import { openRegistry } from '../registry/open.ts';
import { applyHeapPolicy } from '../util/heap-policy.ts';
import { HttpEndpoint } from '../util/http-endpoint.ts';
import { brokerFlagOptions, brokerModeFrom, PORT } from './broker-flags.ts';
import { integerFlag } from './integer-flag.ts';
import { UsageError } from './errors.ts';
import { registryFlagOptions, registryOptionsFrom } from './registry-flags.ts';
import type { openDevicePlugin as openDevicePluginType } from '../deviceplugin/open.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function parseLabels(text: string | undefined): Record<string, string> | undefined {
  if (text === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const pair of text.split(',').filter((p) => p.trim() !== '')) {
    const [key, value, ...rest] = pair.split('=');
    if (key === undefined || value === undefined || rest.length > 0 || key.trim() === '') {
      throw new UsageError(`--node-labels: '${pair}' is not key=value`);
    }
    out[key.trim()] = value.trim();
  }
  return out;
}

export const agentCommand = {
  async run(argv: string[]): Promise<void> {
    applyHeapPolicy();
    const { values, tokens } = parseArgs({
      args: argv,
      allowNegative: true,
      tokens: true,
      options: {
        ...registryFlagOptions,
        ...brokerFlagOptions,
        node: { type: 'string', default: process.env.NODE_NAME ?? hostname() },
        'node-labels': { type: 'string' },
        'http-port': { type: 'string', default: '8181' },
        'http-host': { type: 'string', default: '0.0.0.0' },
        'log-level': { type: 'string', default: 'info' },
        'uplink-config': { type: 'string' },
        'shutdown-timeout': { type: 'string', default: String(DEFAULT_SHUTDOWN_TIMEOUT_S) },
        dra: { type: 'boolean', default: false },
        'dra-broker-url': { type: 'string' },
        'cdi-dir': { type: 'string' },
        // The kubelet device plugin: off unless its directory is given.
        'device-plugin-dir': { type: 'string' },
        'pod-resources-socket': { type: 'string' },
        'pod-broker-url': { type: 'string' },
        'resync-seconds': { type: 'string', default: '60' },
      },
    });
    const level = LOG_LEVELS.find((l) => l === values['log-level']);
    if (level === undefined)
      throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    const port = integerFlag('http-port', values['http-port'], PORT);
    const resyncSeconds = integerFlag('resync-seconds', values['resync-seconds'], {
      minimum: 1,
      maximum: 86_400,
      what: 'how often every Discovery and slice is compared with what is stored',
    });
    const shutdownTimeout = Number(values['shutdown-timeout']);
    if (!Number.isFinite(shutdownTimeout) || shutdownTimeout <= 0 || shutdownTimeout > 3600)
      throw new UsageError(
        '--shutdown-timeout must be a number of seconds above 0 and at most 3600',
      );
    let brokerMode = brokerModeFrom(values, (flag) =>
      tokens.some((t) => t.kind === 'option' && t.name === flag),
    );
    const node = values.node;
    if (values.dra && values.standalone)
      throw new UsageError('--dra needs a cluster; it cannot run with --standalone');
    if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(node))
      throw new UsageError(`--node '${node}' is not a valid node name`);

    // Loaded only with an uplink: its MQTT client costs ~20 MB of memory.
    const uplinkModule =
      values['uplink-config'] === undefined ? undefined : await import('../uplink/index.ts');
    let uplinkConfig: UplinkConfig | undefined;
    try {
      uplinkConfig = uplinkModule?.loadUplinkConfig(
        values['uplink-config'] ?? '',
        values['state-dir'],
      );
    } catch (err) {
      if (uplinkModule !== undefined && err instanceof uplinkModule.UplinkConfigError)
        throw new UsageError(`--uplink-config: ${err.message}`);
      throw err;
    }
    if (uplinkConfig !== undefined) {
      // The embedded broker hands every message to the uplink before it acknowledges it;
      // any other broker is read like a bridge would, through nodeBroker.
      if (brokerMode?.kind === 'embedded' && uplinkConfig.nodeBroker !== undefined)
        throw new UsageError(
          '--uplink-config: nodeBroker is for an external node broker (--broker-url); the embedded broker feeds the uplink itself',
        );
      if (brokerMode?.kind !== 'embedded' && uplinkConfig.nodeBroker === undefined)
        throw new UsageError(
          '--uplink-config: without the embedded broker, set nodeBroker so that the uplink can subscribe to the node broker',
        );
      // The spool must hold one message of the largest packet the node broker
      // takes (an external broker's own limit is unknown here: its default is assumed).
      let maxPacketBytes = DEFAULT_MAX_PACKET_BYTES;
      if (brokerMode?.kind === 'embedded') {
        const config =
          brokerMode.configFile === undefined
            ? defaultBrokerConfig()
            : await loadBrokerConfig(brokerMode.configFile);
        brokerMode = { ...brokerMode, config };
        maxPacketBytes = config.maxPacketBytes;
      }
      try {
        uplinkModule?.checkSpoolRoom(uplinkConfig, maxPacketBytes);
      } catch (err) {
        if (uplinkModule !== undefined && err instanceof uplinkModule.UplinkConfigError)
          throw new UsageError(`--uplink-config: ${err.message}`);
        throw err;
      }
    }

    const log = createLogger(level).child({ node });
    const metrics = new AgentMetrics();
    const nodeLabels = parseLabels(values['node-labels']);
    const reachability = new RegistryReachability();
    const registry = await openRegistry({
      ...registryOptionsFrom(values),
      ...(nodeLabels !== undefined ? { nodeLabels } : {}),
      fieldManager: node,
      log,
      onRequest: (verb, resource, code) => {
        metrics.apiRequests.inc({ verb, resource, code });
        reachability.observe(code);
      },
    });
    let dataPlane: DataPlane | undefined;
    let uplink: RunningUplink | undefined;
    try {
      // The uplink's sender stops on a terminal error (logged); the spool keeps storing.
      try {
        uplink =
          uplinkConfig === undefined
            ? undefined
            : await uplinkModule?.startUplink(uplinkConfig, {
                node,
                log,
                registry,
                nodePublisher: {
                  publish: async (topic, payload) => {
                    await dataPlane?.broker.publish(topic, payload, { qos: 1 });
                  },
                },
              });
      } catch (err) {
        // No spool, no uplink: discovery and the node broker go on without it.
        if (uplinkModule === undefined || !(err instanceof uplinkModule.UplinkSpoolError))
          throw err;
        log.error(
          { code: err.code, spoolCode: err.spoolCode, err: err.message },
          'uplink off: its spool cannot be opened; discovery and the node broker run without it',
        );
        uplinkOffGauge(metrics.registry).set({ code: err.spoolCode ?? err.code }, 1);
      }
      const accept = uplink?.uplink;
      dataPlane =
        brokerMode === undefined
          ? undefined
          : await DataPlane.open({
              broker: brokerMode,
              node,
              registry,
              log,
              metrics,
              ...(accept !== undefined && brokerMode.kind === 'embedded'
                ? { beforeAck: (msgs) => accept.acceptAll(msgs) }
                : {}),
            });
    } catch (err) {
      await uplink?.close();
      await registry.close();
      throw err;
    }
    if (uplink !== undefined) {
      const running = uplink;
      observeUplink(metrics.registry, () => running.stats());
    }
    if (values['device-plugin-dir'] !== undefined && registry.kind !== 'kubernetes')
      log.warn('--device-plugin-dir ignored: without a cluster there is no kubelet to serve');
    let devicePlugin: Awaited<ReturnType<typeof openDevicePluginType>>;
    if (values['device-plugin-dir'] !== undefined && registry.kind === 'kubernetes') {
      // Loaded only when asked for: it reads its .proto files when loaded.
      const { openDevicePlugin } = await import('../deviceplugin/open.ts');
      devicePlugin = await openDevicePlugin({
        dir: values['device-plugin-dir'],
        node,
        brokerUrl:
          values['pod-broker-url'] ??
          `mqtt://${process.env.NODE_IP ?? node}:${values['broker-port']}`,
        kubeconfig: values.kubeconfig,
        podResourcesSocket: values['pod-resources-socket'],
        log,
      });
    }
    const agent = new Agent({
      node,
      registry,
      log,
      metrics,
      resyncMs: resyncSeconds * 1000,
      reachability,
      publishers: (discovery, shared) =>
        dataPlane?.publisherFor(discovery, shared) ?? discardingPublisher(metrics.publishDropped),
    });
    const health = new HealthMonitor({ reconcileBusySince: () => agent.reconcileBusySince });
    const http = new HttpEndpoint({
      port,
      host: values['http-host'],
      notReady: () => (agent.ready ? undefined : 'first sync not done'),
      problem: () => health.problem(),
      registry: metrics.registry,
      log,
    });

    // Whatever handlers, broker clients or the spool are doing, the process ends
    // within --shutdown-timeout of the first signal, and at once on a second.
    const shutdown = new Shutdown({ timeoutMs: shutdownTimeout * 1000, log });
    const onSignal = (sig: NodeJS.Signals): void => shutdown.begin(`received ${sig}`, sig);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let dra: RunningDra | undefined;
    try {
      await http.listen();
      // DRA (off by default): ResourceSlices from this node's DeviceSlices, and the kubelet
      // plugin; loaded only then, as gRPC costs memory.
      if (values.dra && registry.kind === 'kubernetes')
        dra = await (
          await import('../dra/start-dra.ts')
        ).startDra({
          node,
          log,
          kubeconfig: values.kubeconfig,
          brokerUrl: values['dra-broker-url'],
          cdiDir: values['cdi-dir'],
        });
      else if (values.dra) log.warn('--dra is off: no cluster is configured');
      log.info({ registry: registry.kind }, 'agent started');
      await shutdown.step('discovery runs', agent.run(shutdown.signal));
    } finally {
      shutdown.begin('the agent ended');
      health.close();
      await shutdown.step('http endpoint', http.close());
      await shutdown.step('DRA driver', dra?.close() ?? Promise.resolve());
      await shutdown.step('device plugin', devicePlugin?.close() ?? Promise.resolve());
      await shutdown.step('node broker', dataPlane?.close() ?? Promise.resolve());
      await shutdown.step('uplink', uplink?.close() ?? Promise.resolve());
      await shutdown.step('registry', registry.close());
      shutdown.finished();
    }
  },
};
