import { parseArgs } from 'node:util';
import { Shutdown } from '../agent/shutdown.ts';
import {
  Controller,
  DEFAULT_NODE_GRACE_MS,
  DEFAULT_RESYNC_MS,
  DEFAULT_WORKERS,
} from '../controller/controller.ts';
import { ControllerApi, DEFAULT_MAX_WRITES_IN_FLIGHT } from '../controller/controller-api.ts';
import { BrokerReconciler } from '../controller/broker-reconciler.ts';
import { DeviceClassReconciler } from '../controller/device-class-reconciler.ts';
import { resourceName } from '../deviceplugin/resource-names.ts';
import type { Device } from '../api/types.ts';
import { eventMetrics, KubeEventRecorder } from '../controller/event-recorder.ts';
import { KubeEventWriter } from '../controller/event-writer.ts';
import {
  defaultIdentity,
  LeaderElectionConfigError,
  LeaderElector,
  leaderMetrics,
} from '../controller/leader-election.ts';
import { KubeLeaseStore } from '../controller/lease-store.ts';
import { ControllerMetrics } from '../controller/metrics.ts';
import { createLogger } from '../log.ts';
import { applyHeapPolicy } from '../util/heap-policy.ts';
import { HttpEndpoint } from '../util/http-endpoint.ts';
import { inClusterConnection } from '../registry/kubernetes/client/in-cluster.ts';
import { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../registry/kubernetes/client/kubeconfig.ts';
import { findKubeConfig } from '../registry/open.ts';
import { durationFlag } from './duration-flag.ts';
import { UsageError } from './errors.ts';
import { integerFlag } from './integer-flag.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** A reconcile is a few requests with 30 s timeouts: one running this long is stuck, and a restart is the cure. */
const STUCK_MS = 5 * 60_000;

export const controllerCommand = {
  async run(argv: string[]): Promise<void> {
    applyHeapPolicy();
    const { values } = parseArgs({
      args: argv,
      allowNegative: true,
      options: {
        kubeconfig: { type: 'string' },
        // One namespace only (e.g. one per tenant, or per test); default every namespace.
        namespace: { type: 'string' },
        'node-grace-period': { type: 'string', default: `${DEFAULT_NODE_GRACE_MS / 1000}s` },
        'resync-period': { type: 'string', default: `${DEFAULT_RESYNC_MS / 1000}s` },
        'leader-elect': { type: 'boolean', default: true },
        'lease-namespace': {
          type: 'string',
          default: process.env.POD_NAMESPACE ?? 'edgebridge-system',
        },
        'leader-elect-lease': { type: 'string', default: 'edgebridge-controller' },
        // kube-controller-manager's flag names and defaults.
        'leader-elect-lease-duration': { type: 'string', default: '15s' },
        'leader-elect-renew-deadline': { type: 'string', default: '10s' },
        'leader-elect-retry-period': { type: 'string', default: '2s' },
        workers: { type: 'string', default: String(DEFAULT_WORKERS) },
        // Broker pods ask for a slot of their device (edgebridge.io/<device>), which the
        // agents' device plugin offers; without it they are placed by node affinity alone.
        'broker-device-resource': { type: 'boolean', default: false },
        // A DRA DeviceClass per Discovery (resource.k8s.io/v1; idle on clusters without it).
        'device-classes': { type: 'boolean', default: true },
        'http-port': { type: 'string', default: '8182' },
        'http-host': { type: 'string', default: '0.0.0.0' },
        'log-level': { type: 'string', default: 'info' },
      },
    });
    const level = LOG_LEVELS.find((l) => l === values['log-level']);
    if (level === undefined)
      throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    const port = integerFlag('http-port', values['http-port'], {
      minimum: 0,
      maximum: 65535,
      what: 'a port number; 0 picks a free one',
    });
    const workers = integerFlag('workers', values.workers, {
      minimum: 1,
      maximum: 1024,
      what: 'keys reconciled at once',
    });
    const nodeGraceMs = durationFlag(
      'node-grace-period',
      values['node-grace-period'],
      0,
      7 * 86_400_000,
    );
    const resyncMs = durationFlag('resync-period', values['resync-period'], 1000, 86_400_000);
    const election = {
      leaseDurationMs: durationFlag(
        'leader-elect-lease-duration',
        values['leader-elect-lease-duration'],
        1000,
        3_600_000,
      ),
      renewDeadlineMs: durationFlag(
        'leader-elect-renew-deadline',
        values['leader-elect-renew-deadline'],
        1,
        3_600_000,
      ),
      retryPeriodMs: durationFlag(
        'leader-elect-retry-period',
        values['leader-elect-retry-period'],
        1,
        3_600_000,
      ),
    };
    const source = findKubeConfig(values.kubeconfig);
    if (source === undefined)
      throw new UsageError('no kubeconfig: pass --kubeconfig, set KUBECONFIG or run in a cluster');

    const log = createLogger(level).child({ component: 'controller' });
    const connection =
      source.kind === 'cluster'
        ? inClusterConnection(process.env)
        : loadKubeConfigFiles(source.files);
    // Writes in flight, and a connection for each of the controller's and the broker reconciler's watches and the rest.
    const client = new KubeClient(connection, { maxSockets: DEFAULT_MAX_WRITES_IN_FLIGHT + 16 });
    const metrics = new ControllerMetrics();
    const api = new ControllerApi({
      client,
      log,
      onRequest: (verb, resource, code) => {
        metrics.apiRequests.inc({ verb, resource, code });
        metrics.writeLimit.set(api.writeLimit);
      },
      ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
    });
    const identity = defaultIdentity();
    const lease = `${values['lease-namespace']}/${values['leader-elect-lease']}`;
    let elector: LeaderElector | undefined;
    try {
      elector = values['leader-elect']
        ? new LeaderElector({
            store: new KubeLeaseStore(
              client,
              values['lease-namespace'],
              values['leader-elect-lease'],
            ),
            log,
            identity,
            ...election,
            metrics: leaderMetrics(metrics.registry, lease),
          })
        : undefined;
    } catch (err) {
      client.close();
      if (err instanceof LeaderElectionConfigError) throw new UsageError(err.message);
      throw err;
    }
    const events = new KubeEventRecorder({
      writer: new KubeEventWriter(client),
      log,
      instance: identity,
      metrics: eventMetrics(metrics.registry),
      // Device writes first: a burst's Events wait until it is over.
      waitTurn: (signal, maxWaitMs) => api.whenQuiet(signal, maxWaitMs),
    });
    /** The controller of the current term; undefined while this replica does not lead. */
    let current: Controller | undefined;
    const http = new HttpEndpoint({
      port,
      host: values['http-host'],
      // A replica waiting for the Lease is ready: it is a warm standby, and a
      // rollout must not wait for it to lead.
      notReady: () => current?.notReady(),
      problem: () => {
        const busy = current?.busyForMs();
        return busy !== undefined && busy > STUCK_MS
          ? `a reconcile has run for ${Math.round(busy / 1000)} s`
          : undefined;
      },
      registry: metrics.registry,
      log,
    });
    const shutdown = new Shutdown({ timeoutMs: SHUTDOWN_TIMEOUT_MS, log });
    const onSignal = (sig: NodeJS.Signals): void => shutdown.begin(`received ${sig}`, sig);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    /** One term of leadership: a fresh controller, its caches listed anew. */
    const term = async (signal: AbortSignal): Promise<void> => {
      const brokers = new BrokerReconciler({
        client,
        log: log.child({ part: 'brokers' }),
        resyncMs,
        ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
        ...(values['broker-device-resource']
          ? { resourceNameOf: (d: Device) => resourceName(d.metadata.name) }
          : {}),
        onProblem: (ns, name) => controller.discoveryChanged(ns, name),
      });
      const classes = values['device-classes']
        ? new DeviceClassReconciler({
            client,
            log: log.child({ part: 'deviceclasses' }),
            ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
            resyncMs,
            onProblem: (ns, name) => controller.discoveryChanged(ns, name),
          })
        : undefined;
      const controller = new Controller({
        api,
        log,
        metrics,
        nodeGraceMs,
        resyncMs,
        workers,
        events,
        brokerProblem: (ns, name) => brokers.problem(ns, name),
        deviceClassProblem: (ns, name) => classes?.problem(ns, name),
      });
      current = controller;
      try {
        await Promise.all([
          controller.run(signal),
          brokers.run(signal),
          classes?.run(signal) ?? Promise.resolve(),
        ]);
      } finally {
        if (current === controller) current = undefined;
      }
    };
    try {
      await http.listen();
      log.info(
        {
          nodeGraceSeconds: nodeGraceMs / 1000,
          leaderElect: elector !== undefined,
          lease,
          identity,
        },
        'controller started',
      );
      if (elector === undefined) {
        await shutdown.step('controller', term(shutdown.signal));
      } else {
        const running = elector;
        shutdown.signal.addEventListener('abort', () => void running.close(), { once: true });
        await shutdown.step('leader election', running.run(term));
      }
    } finally {
      shutdown.begin('the controller ended');
      await shutdown.step('leader election', elector?.close() ?? Promise.resolve());
      await shutdown.step('events', events.close());
      await shutdown.step('http endpoint', http.close());
      client.close();
      shutdown.finished();
    }
  },
};
