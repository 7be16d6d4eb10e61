import type { ExecConfig } from './exec-plugin.ts';

/** How requests prove who they are. */
export type ClusterAuth =
  | { kind: 'none' }
  | { kind: 'token'; token: string }
  /** Read again when the file changes (rotated service account tokens). */
  | { kind: 'tokenFile'; file: string }
  | { kind: 'basic'; username: string; password: string }
  /** A credential plugin run on demand (EKS, GKE, AKS kubeconfigs): a token or a client certificate. */
  | { kind: 'exec'; exec: ExecConfig };

/** Everything needed to talk to one API server as one user: a resolved kubeconfig context. */
export interface ClusterConnection {
  /** e.g. https://10.0.0.1:6443 (a path prefix is kept). */
  server: string;
  /** PEM bundle to trust instead of the system roots. */
  ca?: Buffer;
  insecureSkipTlsVerify: boolean;
  /** The name to check the server's certificate against, if not the server URL's host. */
  tlsServerName?: string;
  /** Client certificate and key (PEM), for certificate authentication. */
  cert?: Buffer;
  key?: Buffer;
  auth: ClusterAuth;
  /** Where this came from (a file and context, or "in-cluster"), for messages. */
  source: string;
}
