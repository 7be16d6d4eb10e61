import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Logger } from 'pino';
import { inCluster, inClusterConnection } from './kubernetes/client/in-cluster.ts';
import { defaultKubeConfigFiles, loadKubeConfigFiles } from './kubernetes/client/kubeconfig.ts';
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
  /** A reader (the CLI): the embedded registry's state directory must be one an agent has used. */
  requireStateDir?: boolean;
  /** Server-side apply field manager: the node name for an agent. */
  fieldManager?: string;
  log: Logger;
  onRequest?: (verb: string, resource: string, code: string) => void;
}

/** Where a kubeconfig comes from; decided without reading it. */
type KubeConfigSource = { kind: 'files'; files: string[] } | { kind: 'cluster' };

/** --kubeconfig, in-cluster config, $KUBECONFIG or ~/.kube/config; undefined if none is found. */
export function findKubeConfig(file?: string): KubeConfigSource | undefined {
  if (file !== undefined) return { kind: 'files', files: [file] };
  if (inCluster(process.env)) return { kind: 'cluster' };
  const files = defaultKubeConfigFiles(process.env, homedir());
  return files.some((f) => existsSync(f)) ? { kind: 'files', files } : undefined;
}

/**
 * The Kubernetes registry when a cluster is configured, else (or with
 * `standalone`) the embedded one under the state directory.
 */
export async function openRegistry(opts: RegistryOptions): Promise<Registry> {
  const source = opts.standalone ? undefined : findKubeConfig(opts.kubeconfig);
  if (source !== undefined) {
    const { KubernetesRegistry } = await import('./kubernetes/registry.ts');
    const connection =
      source.kind === 'cluster'
        ? inClusterConnection(process.env)
        : loadKubeConfigFiles(source.files);
    return new KubernetesRegistry({
      connection,
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
    ...(opts.requireStateDir !== undefined ? { requireStateDir: opts.requireStateDir } : {}),
    log: opts.log,
  });
}
