// The agent's one entry to DRA (behind --dra): a client of its own, the
// driver, and the feed from this node's DeviceSlices.
import type { Logger } from 'pino';
import { inClusterConnection } from '../registry/kubernetes/client/in-cluster.ts';
import { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../registry/kubernetes/client/kubeconfig.ts';
import { findKubeConfig } from '../registry/open.ts';
import { DraDriver } from './dra-driver.ts';
import { feedFromNodeSlices } from './node-slices-feed.ts';

export interface StartDraOptions {
  node: string;
  log: Logger;
  kubeconfig?: string | undefined;
  /** The node broker's URL as pods reach it (e.g. mqtt://<node IP>:1883). */
  brokerUrl?: string | undefined;
  cdiDir?: string | undefined;
  registryDir?: string | undefined;
  pluginDir?: string | undefined;
}

/** A running DRA driver; close() stops it (its ResourceSlices stay, owned by the Node). */
export interface RunningDra {
  close(): Promise<void>;
}

/** Starts the DRA driver; throws if no cluster is configured (DRA needs one). */
export async function startDra(opts: StartDraOptions): Promise<RunningDra> {
  const source = findKubeConfig(opts.kubeconfig);
  if (source === undefined)
    throw new Error('DRA needs a cluster: no kubeconfig or in-cluster config');
  const client = new KubeClient(
    source.kind === 'cluster'
      ? inClusterConnection(process.env)
      : loadKubeConfigFiles(source.files),
  );
  const log = opts.log.child({ component: 'dra' });
  const driver = new DraDriver({
    client,
    node: opts.node,
    log,
    ...(opts.brokerUrl !== undefined ? { brokerUrl: opts.brokerUrl } : {}),
    ...(opts.cdiDir !== undefined ? { cdiDir: opts.cdiDir } : {}),
    ...(opts.registryDir !== undefined ? { registryDir: opts.registryDir } : {}),
    ...(opts.pluginDir !== undefined ? { pluginDir: opts.pluginDir } : {}),
  });
  try {
    await driver.start();
  } catch (err) {
    await driver.close();
    client.close();
    throw err;
  }
  const stop = new AbortController();
  const feeding = feedFromNodeSlices(client, opts.node, driver, log, stop.signal);
  let closing: Promise<void> | undefined;
  return {
    close: () =>
      (closing ??= (async () => {
        stop.abort(new Error('DRA stopped'));
        await feeding;
        await driver.close();
        client.close();
      })()),
  };
}
