import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { EmbeddedRegistry } from './embedded/registry.ts';
import { KubernetesRegistry } from './kubernetes/registry.ts';
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

/** A kubeconfig from --kubeconfig, in-cluster config, $KUBECONFIG or ~/.kube/config; undefined if none is found. */
export function findKubeConfig(file?: string): KubeConfig | undefined {
  const kc = new KubeConfig();
  if (file !== undefined) {
    kc.loadFromFile(file);
    return kc;
  }
  if (
    process.env.KUBERNETES_SERVICE_HOST !== undefined &&
    existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')
  ) {
    kc.loadFromCluster();
    return kc;
  }
  const candidates = (process.env.KUBECONFIG ?? '').split(path.delimiter).filter((f) => f !== '');
  candidates.push(path.join(homedir(), '.kube', 'config'));
  if (candidates.some((f) => existsSync(f))) {
    kc.loadFromDefault();
    return kc;
  }
  return undefined;
}

/**
 * The Kubernetes registry when a cluster is configured, else (or with
 * `standalone`) the embedded one under the state directory.
 */
export async function openRegistry(opts: RegistryOptions): Promise<Registry> {
  const kubeConfig = opts.standalone ? undefined : findKubeConfig(opts.kubeconfig);
  if (kubeConfig !== undefined) {
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
  return EmbeddedRegistry.open({
    stateDir: opts.stateDir,
    ...(opts.configFile !== undefined ? { configFile: opts.configFile } : {}),
    ...(opts.nodeLabels !== undefined ? { nodeLabels: opts.nodeLabels } : {}),
    log: opts.log,
  });
}
