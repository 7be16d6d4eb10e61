import { existsSync } from 'node:fs';
import path from 'node:path';
import { readBoundedFileSync } from '../../../util/bounded-file.ts';
import type { ClusterConnection } from './connection.ts';
import { KubeConfigError } from './errors.ts';

/** The service account's CA bundle. */
const MAX_CA_BYTES = 1024 * 1024;

/** Where the kubelet mounts a pod's service account token and the cluster CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** True if this process runs in a pod with a service account (the in-cluster config applies). */
export function inCluster(env: NodeJS.ProcessEnv, dir = SERVICE_ACCOUNT_DIR): boolean {
  return env.KUBERNETES_SERVICE_HOST !== undefined && existsSync(path.join(dir, 'token'));
}

/** The connection of a pod: KUBERNETES_SERVICE_HOST/PORT, the mounted CA and the (rotating) token file. */
export function inClusterConnection(
  env: NodeJS.ProcessEnv,
  dir = SERVICE_ACCOUNT_DIR,
): ClusterConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === '' || port === undefined || port === '')
    throw new KubeConfigError(
      'in-cluster config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT',
    );
  const caFile = path.join(dir, 'ca.crt');
  let ca: Buffer;
  try {
    ca = readBoundedFileSync(caFile, { maxBytes: MAX_CA_BYTES });
  } catch (err) {
    throw new KubeConfigError(
      `in-cluster config: cannot read ${caFile}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  // An IPv6 service address needs brackets in a URL.
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    server: `https://${hostPart}:${port}`,
    ca,
    insecureSkipTlsVerify: false,
    auth: { kind: 'tokenFile', file: path.join(dir, 'token') },
    source: 'in-cluster',
  };
}
