import type {
  Device,
  DeviceNodeStatus,
  DeviceSpec,
  Discovery,
  DiscoveryStatus,
} from '../api/types.ts';

/** What one node says of one device: its spec and labels, and this node's entry in status.nodes. */
export interface DeviceView {
  namespace: string;
  name: string;
  discovery: { name: string; uid: string };
  labels: Record<string, string>;
  spec: DeviceSpec;
  node: DeviceNodeStatus;
}

/** Which objects a list returns. */
export interface Query {
  /** Undefined: every namespace. */
  namespace?: string;
  /** A Kubernetes label selector, e.g. "edgebridge.io/handler=usb". */
  labelSelector?: string;
  /** A field selector on spec.handler / spec.discovery, e.g. "spec.handler=onvif". */
  fieldSelector?: string;
}

/** A reference to a key of a Secret or ConfigMap in a namespace. */
export interface ValueRef {
  kind: 'Secret' | 'ConfigMap';
  namespace: string;
  name: string;
  key: string;
}

/** What the cluster says of a bearer token (the status of a TokenReview). */
export interface TokenReviewStatus {
  authenticated: boolean;
  /** e.g. system:serviceaccount:NAMESPACE:NAME */
  username?: string;
  /** The audiences of the request that the token is valid for. */
  audiences?: string[];
  /** Why the token was not authenticated, as the API server puts it. */
  error?: string;
}

/** Where the agent learns what to discover (Discoveries, referenced values, its Node's labels). */
export interface DiscoverySource {
  /**
   * Keeps `onChange` informed until the signal aborts: called with the complete
   * current set of Discoveries after the first list and after every change or relist.
   */
  watchDiscoveries(
    onChange: (discoveries: Discovery[]) => void,
    signal: AbortSignal,
  ): Promise<void>;
  /** Discoveries matching the query. */
  listDiscoveries(query: Query): Promise<Discovery[]>;
  /** Replaces the Discovery's status (conditions, device count). */
  updateDiscoveryStatus(namespace: string, name: string, status: DiscoveryStatus): Promise<void>;
  /** The value of a Secret or ConfigMap key; undefined if the object or key is missing. */
  readValue(ref: ValueRef): Promise<string | undefined>;
  /** The labels of a node, for spec.nodeSelector. */
  nodeLabels(node: string): Promise<Record<string, string>>;
  /**
   * Keeps `onLabels` informed of a node's labels (after the first read and
   * after every change or relist; {} while it has no Node object) until the
   * signal aborts.
   */
  watchNodeLabels(
    node: string,
    onLabels: (labels: Record<string, string>) => void,
    signal: AbortSignal,
  ): Promise<void>;
}

/** Where Devices are kept. Each node writes only its own entry of status.nodes. */
export interface DeviceStore {
  /**
   * Creates or updates the Device and sets this node's entry in status.nodes.
   * `known: false` says the caller has never seen it stored (a hint: a store
   * may then write the object first instead of asking whether it exists).
   */
  applyDevice(view: DeviceView, hint?: { known: boolean }): Promise<void>;
  /** Removes `node`'s entry; deletes the Device when no node is left. */
  removeDeviceNode(namespace: string, name: string, node: string): Promise<void>;
  /** Devices matching the query. */
  listDevices(query: Query): Promise<Device[]>;
}

/** A registry back end: the Kubernetes API, or the embedded store for running without a cluster. */
export interface Registry extends DiscoverySource, DeviceStore {
  readonly kind: 'kubernetes' | 'embedded';
  /**
   * Asks the API server who a bearer token belongs to (a TokenReview), for
   * clients of the node broker. The embedded registry has no one to ask and
   * throws a RegistryUnsupportedError.
   */
  reviewToken(token: string, audiences: string[]): Promise<TokenReviewStatus>;
  /** Stops watches and releases connections. Idempotent. */
  close(): Promise<void>;
}
