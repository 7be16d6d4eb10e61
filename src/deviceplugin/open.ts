// The device plugin as the agent starts it: claims go to the API server the
// agent's kubeconfig (or in-cluster config) names.
import type { Logger } from 'pino';
import { findKubeConfig } from '../registry/open.ts';
import { inClusterConnection } from '../registry/kubernetes/client/in-cluster.ts';
import { KubeClient } from '../registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../registry/kubernetes/client/kubeconfig.ts';
import { DevicePlugin } from './device-plugin.ts';
import { feedFromNodeSlices } from './node-slices-feed.ts';
import { KubeDeviceStore } from './device-store.ts';

export interface OpenDevicePluginOptions {
  dir: string;
  node: string;
  brokerUrl: string;
  kubeconfig?: string | undefined;
  podResourcesSocket?: string | undefined;
  log: Logger;
}

/** Starts the plugin; undefined when no cluster is configured (the embedded registry has no kubelet). */
export async function openDevicePlugin(
  opts: OpenDevicePluginOptions,
): Promise<{ plugin: DevicePlugin; close: () => Promise<void> } | undefined> {
  const source = findKubeConfig(opts.kubeconfig);
  if (source === undefined) return undefined;
  const client = new KubeClient(
    source.kind === 'cluster'
      ? inClusterConnection(process.env)
      : loadKubeConfigFiles(source.files),
  );
  const plugin = await DevicePlugin.start({
    dir: opts.dir,
    node: opts.node,
    brokerUrl: opts.brokerUrl,
    store: new KubeDeviceStore(client),
    log: opts.log,
    ...(opts.podResourcesSocket !== undefined
      ? { podResourcesSocket: opts.podResourcesSocket }
      : {}),
  });
  const stop = new AbortController();
  const feeding = feedFromNodeSlices(client, opts.node, plugin, opts.log, stop.signal);
  return {
    plugin,
    close: async () => {
      stop.abort();
      await feeding;
      await plugin.close();
      client.close();
    },
  };
}
