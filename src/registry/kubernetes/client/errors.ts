/** The API server answered with an error status; carries its Status reason and message. */
export class KubeApiError extends Error {
  readonly code = 'EDGEBRIDGE_KUBE_API';
  /** The HTTP status (e.g. 404, 409, 410). */
  readonly status: number;
  /** The Status object's machine-readable reason (e.g. "NotFound", "Expired"), if it gave one. */
  readonly reason: string | undefined;
  constructor(status: number, reason: string | undefined, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
  }
}

/** The API server could not be reached, or the connection broke or timed out. */
export class KubeTransportError extends Error {
  readonly code = 'EDGEBRIDGE_KUBE_TRANSPORT';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KubeTransportError';
  }
}

/** A kubeconfig (or the in-cluster files) is missing, unreadable or asks for something unsupported. */
export class KubeConfigError extends Error {
  readonly code = 'EDGEBRIDGE_KUBECONFIG';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KubeConfigError';
  }
}

/** A watch stream sent a line that is not a watch event, or one larger than the cap. */
export class WatchStreamError extends Error {
  readonly code = 'EDGEBRIDGE_KUBE_WATCH_STREAM';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WatchStreamError';
  }
}

/**
 * A kubeconfig's exec credential plugin could not be started, failed, timed
 * out or printed something that is not an ExecCredential. The message carries
 * the plugin's stderr (capped), never what it printed on stdout.
 */
export class ExecPluginError extends Error {
  readonly code = 'EDGEBRIDGE_KUBE_EXEC_PLUGIN';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ExecPluginError';
  }
}
