// The edgebridge.io/v1alpha1 API as TypeScript types. The CRD schemas in
// manifests/crds/ are generated from src/api/schema.ts; a type-level test keeps
// these types and those schemas in agreement.

export const GROUP = 'edgebridge.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/**
 * The handlers this build has: the one list from which the CRD enum (src/api/schema.ts)
 * and the agent's handler map (discovery-handlers/registry.ts, typed by it) both come,
 * so the API accepts no name that the agent would answer with UnknownHandler.
 */
export const HANDLER_NAMES = ['mdns', 'mqtt', 'onvif', 'simulated', 'usb'] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

/** Labels every Device carries, so that label selectors work. */
export const LABEL_DISCOVERY = 'edgebridge.io/discovery';
export const LABEL_HANDLER = 'edgebridge.io/handler';
/** The node whose agent wrote a DeviceSlice; the admission policy compares it with the writer's token. */
export const LABEL_NODE = 'edgebridge.io/node';

/** Most devices one DeviceSlice lists; a node that sees more writes several slices. */
export const MAX_SLICE_DEVICES = 128;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** A key of a Secret or ConfigMap in the Discovery's own namespace. */
export interface KeySelector {
  name: string;
  key: string;
  optional?: boolean;
}

export interface DiscoveryProperty {
  name: string;
  /** Exactly one of value and valueFrom. */
  value?: string;
  valueFrom?: { secretKeyRef?: KeySelector; configMapKeyRef?: KeySelector };
}

export interface DiscoverySpec {
  handler: {
    name: HandlerName;
    /** Handler-specific; validated by the handler, not by the API server. */
    details?: Record<string, unknown>;
  };
  properties?: DiscoveryProperty[];
  /** A Kubernetes label selector on Node objects; absent selects every node. */
  nodeSelector?: LabelSelector;
  /** How many pods may use one device at once (default 1). */
  capacity?: number;
  /** Polling interval for handlers that poll (default 30). */
  intervalSeconds?: number;
  /** How long a device may be unseen before this node's entry is removed (default 60). */
  gracePeriodSeconds?: number;
  broker?: { podSpec?: Record<string, unknown>; jobSpec?: Record<string, unknown> };
  deviceService?: Record<string, unknown>;
  discoveryService?: Record<string, unknown>;
  uplink?: { enabled: boolean; priority?: number; ttlSeconds?: number };
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

export interface DiscoveryStatus {
  conditions?: Condition[];
  /** Devices currently registered for this Discovery. */
  devices?: number;
  observedGeneration?: number;
}

export interface Discovery {
  apiVersion: typeof API_VERSION;
  kind: 'Discovery';
  metadata: ObjectMeta;
  spec: DiscoverySpec;
  status?: DiscoveryStatus;
}

export interface DeviceSpec {
  discovery: string;
  handler: HandlerName;
  /** True for network devices seen by several nodes; false for node-local ones (USB). */
  shared: boolean;
  /** The handler's stable id of the device. */
  id: string;
  /** What a workload needs to use the device (ENV_STYLE keys); never secrets. */
  properties?: Record<string, string>;
  capacity: number;
}

/** A device file a pod on the node is given. */
export interface DeviceFile {
  hostPath: string;
  containerPath?: string;
  permissions?: string;
}

/** A host path a pod on the node is given. */
export interface HostMount {
  hostPath: string;
  containerPath: string;
  readOnly?: boolean;
}

export interface DeviceNodeStatus {
  /** Node name; the list-map key (the controller writes the list from the nodes' slices). */
  name: string;
  deviceNodes?: DeviceFile[];
  mounts?: HostMount[];
}

export interface DeviceStatus {
  nodes?: DeviceNodeStatus[];
  conditions?: Condition[];
  /** Slot number to its claim, `<node>:<resource>[:<namespace>/<pod>]` (deviceplugin/claims.ts). */
  usage?: Record<string, string>;
  /** Where the device's data is published on the node broker. */
  topics?: { data: string; state: string; events: string };
}

export interface Device {
  apiVersion: typeof API_VERSION;
  kind: 'Device';
  metadata: ObjectMeta;
  spec: DeviceSpec;
  status?: DeviceStatus;
}

/** One device as one node sees it, in a DeviceSlice. */
export interface SliceDevice {
  /** The handler's stable id of the device; unique within the slice. */
  id: string;
  /** What a workload needs to use the device (ENV_STYLE keys); never secrets. */
  properties?: Record<string, string>;
  /** A few labels for label selectors (e.g. USB vendor/product). */
  labels?: Record<string, string>;
  deviceNodes?: DeviceFile[];
  mounts?: HostMount[];
}

export interface DeviceSliceSpec {
  /** The node whose agent wrote the slice; equal to its edgebridge.io/node label. */
  node: string;
  /** The Discovery (same namespace) the devices were found for; equal to its edgebridge.io/discovery label. */
  discovery: string;
  /** True for network devices that several nodes may see; false for node-local ones (USB). */
  shared: boolean;
  /** At most MAX_SLICE_DEVICES, ids unique. */
  devices: SliceDevice[];
  /** devices.length, for kubectl's Devices column (the API server checks it). */
  deviceCount: number;
  /**
   * contract: the node's conditions for the Discovery (DetailsValid, Discovering),
   * carried on the node's first slice only (the one whose name ends in -0); the
   * controller aggregates them into the Discovery's status.
   */
  conditions?: Condition[];
}

/**
 * What one node sees now for one Discovery: written only by that node's agent,
 * folded into Devices by the controller.
 */
export interface DeviceSlice {
  apiVersion: typeof API_VERSION;
  kind: 'DeviceSlice';
  metadata: ObjectMeta;
  spec: DeviceSliceSpec;
}
