import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from './registry.ts';

export const DEFAULT_STATE_DIR = '/var/lib/edgebridge';

export interface RegistryOptions {
  /** Use the embedded registry even if a cluster is reachable. */
  standalone: boolean;
  kubeconfig?: string;
  stateDir: string;
  /** Discoveries (and the Secrets/ConfigMaps they refer to) for the embedded registry. */
  configFile?: string;
  /** The labels of this node when there is no Node object (embedded registry). */
  nodeLabels?: Record<string, string>;
  /** Server-side apply field manager: the node name for an agent. */
  fieldManager?: string;
  log: Logger;
  onRequest?: (verb: string, resource: string, code: string) => void;
}

/** Where a kubeconfig comes from; decided without loading the Kubernetes client. */
type KubeConfigSource = { kind: 'file'; file: string } | { kind: 'cluster' } | { kind: 'default' };

/** --kubeconfig, in-cluster config, $KUBECONFIG or ~/.kube/config; undefined if none is found. */
export function findKubeConfig(file?: string): KubeConfigSource | undefined {
  if (file !== undefined) return { kind: 'file', file };
  if (
    process.env.KUBERNETES_SERVICE_HOST !== undefined &&
    existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')
  ) {
    return { kind: 'cluster' };
  }
  const candidates = (process.env.KUBECONFIG ?? '').split(path.delimiter).filter((f) => f !== '');
  candidates.push(path.join(homedir(), '.kube', 'config'));
  return candidates.some((f) => existsSync(f)) ? { kind: 'default' } : undefined;
}

/**
 * The Kubernetes registry when a cluster is configured, else (or with
 * `standalone`) the embedded one under the state directory.
 */
export async function openRegistry(opts: RegistryOptions): Promise<Registry> {
  const source = opts.standalone ? undefined : findKubeConfig(opts.kubeconfig);
  if (source !== undefined) {
    // Loaded only here: the Kubernetes client alone costs ~85 MB of memory.
    const { KubeConfig } = await import('@kubernetes/client-node');
    const { KubernetesRegistry } = await import('./kubernetes/registry.ts');
    const kubeConfig = new KubeConfig();
    if (source.kind === 'file') kubeConfig.loadFromFile(source.file);
    else if (source.kind === 'cluster') kubeConfig.loadFromCluster();
    else kubeConfig.loadFromDefault();
    return new KubernetesRegistry({
      kubeConfig,
      fieldManager: opts.fieldManager ?? 'edgebridge',
      log: opts.log,
      ...(opts.onRequest !== undefined ? { onRequest: opts.onRequest } : {}),
    });
  }
  if (!opts.standalone)
    opts.log.info(
      { stateDir: opts.stateDir },
      'no kubeconfig or in-cluster config found; using the embedded registry',
    );
  const { EmbeddedRegistry } = await import('./embedded/registry.ts');
  return EmbeddedRegistry.open({
    stateDir: opts.stateDir,
    ...(opts.configFile !== undefined ? { configFile: opts.configFile } : {}),
    ...(opts.nodeLabels !== undefined ? { nodeLabels: opts.nodeLabels } : {}),
    log: opts.log,
  });
}
