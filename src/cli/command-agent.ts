import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { Agent } from '../agent/agent.ts';
import { discardingPublisher } from '../agent/discarding-publisher.ts';
import { AgentHttpServer } from '../agent/http-server.ts';
import { loadUplinkConfig, startUplink, UplinkConfigError } from '../dataplane/uplink/index.ts';
import { createLogger } from '../log.ts';
import { AgentMetrics } from '../metrics.ts';
import { openRegistry } from '../registry/open.ts';
import { UsageError } from './errors.ts';
import { registryFlagOptions, registryOptionsFrom } from './registry-flags.ts';

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
    const { values } = parseArgs({
      args: argv,
      options: {
        ...registryFlagOptions,
        node: { type: 'string', default: process.env.NODE_NAME ?? hostname() },
        'node-labels': { type: 'string' },
        'http-port': { type: 'string', default: '8181' },
        'http-host': { type: 'string', default: '0.0.0.0' },
        'log-level': { type: 'string', default: 'info' },
        'uplink-config': { type: 'string' },
      },
    });
    const level = LOG_LEVELS.find((l) => l === values['log-level']);
    if (level === undefined)
      throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    const port = Number(values['http-port']);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError('--http-port must be a port number (0 picks a free one)');
    const node = values.node;
    if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(node))
      throw new UsageError(`--node '${node}' is not a valid node name`);

    let uplinkConfig;
    try {
      uplinkConfig =
        values['uplink-config'] === undefined
          ? undefined
          : loadUplinkConfig(values['uplink-config'], values['state-dir']);
    } catch (err) {
      if (err instanceof UplinkConfigError) throw new UsageError(`--uplink-config: ${err.message}`);
      throw err;
    }

    const log = createLogger(level).child({ node });
    const metrics = new AgentMetrics();
    const nodeLabels = parseLabels(values['node-labels']);
    const registry = await openRegistry({
      ...registryOptionsFrom(values),
      ...(nodeLabels !== undefined ? { nodeLabels } : {}),
      fieldManager: node,
      log,
      onRequest: (verb, resource, code) => metrics.apiRequests.inc({ verb, resource, code }),
    });
    const agent = new Agent({
      node,
      registry,
      log,
      metrics,
      publish: discardingPublisher(metrics.publishDropped),
    });
    // The uplink's sender stops on a terminal error (logged); the spool keeps storing.
    const uplink =
      uplinkConfig === undefined
        ? undefined
        : await startUplink(uplinkConfig, { node, log, registry });
    if (uplink !== undefined) metrics.observeUplink(() => uplink.stats());
    const http = new AgentHttpServer({
      port,
      host: values['http-host'],
      ready: () => agent.ready,
      metrics,
      log,
    });

    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals): void => {
      log.info({ signal: sig }, 'stopping');
      stop.abort(new Error(`received ${sig}`));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await http.listen();
      log.info({ registry: registry.kind }, 'agent started');
      await agent.run(stop.signal);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await http.close();
      await uplink?.close();
      await registry.close();
      log.info('agent stopped');
      log.flush();
    }
  },
};
