import type { Device, DeviceSlice, Discovery } from '../api/types.ts';

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
  /** The value of a Secret or ConfigMap key; undefined if the object or key is missing. */
  readValue(ref: ValueRef): Promise<string | undefined>;
  /** The labels of a node, for spec.nodeSelector. */
  nodeLabels(node: string): Promise<Record<string, string>>;
  /**
   * Keeps `onLabels` informed of a node's labels and its Node object's uid
   * (after the first read and after every change or relist; {} and undefined
   * while it has no Node object) until the signal aborts.
   */
  watchNodeLabels(
    node: string,
    onLabels: (labels: Record<string, string>, uid: string | undefined) => void,
    signal: AbortSignal,
  ): Promise<void>;
}

/**
 * contract: where an agent keeps its own node's DeviceSlices, the only objects
 * it writes. Writes take whole slices; the store fills in uid and resourceVersion.
 */
export interface SliceStore {
  /**
   * Keeps `onChange` informed of every DeviceSlice labelled edgebridge.io/node=`node`
   * (all namespaces): the complete set after the first list and after every
   * change, until the signal aborts.
   */
  watchNodeSlices(
    node: string,
    onChange: (slices: DeviceSlice[]) => void,
    signal: AbortSignal,
  ): Promise<void>;
  /**
   * Creates the slice, or replaces the stored one when `metadata.resourceVersion`
   * is set (a stale version fails with a RegistryConflictError). Returns the stored slice.
   */
  putSlice(slice: DeviceSlice): Promise<DeviceSlice>;
  /** Deletes a slice; one already gone is not an error. */
  deleteSlice(namespace: string, name: string): Promise<void>;
}

/** Where Devices are read (the controller, or the embedded registry's fold, writes them). */
export interface DeviceStore {
  /** Devices matching the query. */
  listDevices(query: Query): Promise<Device[]>;
}

/** A registry back end: the Kubernetes API, or the embedded store for running without a cluster. */
export interface Registry extends DiscoverySource, SliceStore, DeviceStore {
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
