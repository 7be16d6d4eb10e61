// The controller's fold: every node's DeviceSlices of one Discovery in, the
// Devices that should exist and the Discovery's status out. Pure, so that the
// Kubernetes controller and the embedded registry apply the same rules, and so
// that the same inputs in any order give the same Devices (no write wars).
import { deviceName } from '../api/names.ts';
import {
  API_VERSION,
  LABEL_DISCOVERY,
  LABEL_HANDLER,
  type Device,
  type DeviceNodeStatus,
  type DeviceSlice,
  type Discovery,
  type SliceDevice,
} from '../api/types.ts';
import { canonicalJson } from '../util/canonical-json.ts';
import type { NodeReadiness } from './node-readiness.ts';

export interface FoldInput {
  discovery: Discovery;
  /** Slices in the Discovery's namespace; those of other Discoveries are ignored. */
  slices: readonly DeviceSlice[];
  /** Readiness of the Node objects by name; a node with none (a host without a kubelet) counts. */
  nodes: ReadonlyMap<string, NodeReadiness>;
  /** How long a node may be NotReady before its entries leave the Devices. */
  nodeGraceMs: number;
  /** The time to judge readiness at, in ms since the epoch. */
  now: number;
}

/** Nodes that report a shared device with different properties or labels. */
export interface DeviceConflict {
  /** The Device's name and the handler's id of the device. */
  device: string;
  id: string;
  /** The nodes whose view the Device takes. */
  chosen: string[];
  /** The nodes that report something else. */
  overruled: string[];
  /** Property and label keys whose values differ between the views (never the values). */
  keys: string[];
}

export interface FoldResult {
  /** The Devices that should exist, sorted by name (metadata: name, namespace, labels). */
  devices: Device[];
  /** Shared devices that nodes disagree on, sorted by Device name. */
  conflicts: DeviceConflict[];
  /** For Discovery.status: how many Devices, and which nodes count. */
  status: {
    devices: number;
    /** Nodes with at least one slice that counts, even an empty one; sorted. */
    reportingNodes: string[];
    /** Nodes with slices, left out for being NotReady longer than the grace period; sorted. */
    droppedNodes: string[];
  };
}

/** One node's report of one device. */
interface Sighting {
  node: string;
  device: SliceDevice;
}

/** Sorts by UTF-16 code units: the same order on every host, whatever its locale. */
const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function fold(input: FoldInput): FoldResult {
  const { discovery } = input;
  const namespace = discovery.metadata.namespace ?? 'default';
  const name = discovery.metadata.name;
  const slices = input.slices
    .filter(
      (s) =>
        s.spec.discovery === name &&
        (s.metadata.namespace ?? 'default') === namespace &&
        s.metadata.deletionTimestamp === undefined,
    )
    // Slice order decides which copy wins when a node lists an id twice (a
    // device moving between two of its slices): the first by name.
    .sort((a, b) => byString(a.metadata.name, b.metadata.name));

  const reporting = new Set<string>();
  const dropped = new Set<string>();
  const shared = new Map<string, Sighting[]>();
  const local = new Map<string, Sighting>();
  const seen = new Set<string>();
  for (const slice of slices) {
    const node = slice.spec.node;
    if (gone(input, node)) {
      dropped.add(node);
      continue;
    }
    reporting.add(node);
    for (const device of slice.spec.devices) {
      const key = `${slice.spec.shared ? 's' : 'l'}\u0000${node}\u0000${device.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (slice.spec.shared) {
        const sightings = shared.get(device.id) ?? [];
        sightings.push({ node, device });
        shared.set(device.id, sightings);
      } else {
        local.set(deviceName(name, device.id, false, node), { node, device });
      }
    }
  }

  const devices: Device[] = [];
  const conflicts: DeviceConflict[] = [];
  for (const [id, sightings] of shared) {
    const deviceNameShared = deviceName(name, id, true, '');
    const { chosen, conflict } = choose(deviceNameShared, id, sightings);
    if (conflict !== undefined) conflicts.push(conflict);
    devices.push(
      deviceOf(discovery, deviceNameShared, true, chosen, sightings.map(nodeEntry).sort(byNode)),
    );
  }
  for (const [device, sighting] of local) {
    devices.push(deviceOf(discovery, device, false, sighting.device, [nodeEntry(sighting)]));
  }
  devices.sort((a, b) => byString(a.metadata.name, b.metadata.name));
  conflicts.sort((a, b) => byString(a.device, b.device));
  return {
    devices,
    conflicts,
    status: {
      devices: devices.length,
      reportingNodes: [...reporting].sort(byString),
      droppedNodes: [...dropped].sort(byString),
    },
  };
}

/** Whether a node has been NotReady for longer than the grace period. */
function gone(input: FoldInput, node: string): boolean {
  const readiness = input.nodes.get(node);
  if (readiness === undefined || readiness.ready) return false;
  return input.now - readiness.since > input.nodeGraceMs;
}

/** What the Device says of a device: its properties and labels. */
function viewKey(device: SliceDevice): string {
  return canonicalJson({ properties: device.properties, labels: device.labels });
}

/**
 * The view of a shared device that most nodes report; on a tie, the one of
 * the node whose name sorts first. Any disagreement is returned as a conflict.
 */
function choose(
  device: string,
  id: string,
  sightings: Sighting[],
): { chosen: SliceDevice; conflict?: DeviceConflict } {
  const views = new Map<string, { device: SliceDevice; nodes: string[] }>();
  for (const s of sightings) {
    const key = viewKey(s.device);
    const view = views.get(key) ?? { device: s.device, nodes: [] };
    view.nodes.push(s.node);
    views.set(key, view);
  }
  const ranked = [...views.values()].map((v) => ({ ...v, nodes: v.nodes.sort(byString) }));
  ranked.sort(
    (a, b) => b.nodes.length - a.nodes.length || byString(a.nodes[0] ?? '', b.nodes[0] ?? ''),
  );
  const [winner, ...losers] = ranked;
  if (winner === undefined) throw new Error(`no sightings of ${id}`);
  if (losers.length === 0) return { chosen: winner.device };
  return {
    chosen: winner.device,
    conflict: {
      device,
      id,
      chosen: winner.nodes,
      overruled: losers.flatMap((l) => l.nodes).sort(byString),
      keys: differingKeys(ranked.map((v) => v.device)),
    },
  };
}

/** Keys (`properties.X`, `labels.Y`) whose values are not the same in every view. */
function differingKeys(views: SliceDevice[]): string[] {
  const keys = new Set<string>();
  for (const field of ['properties', 'labels'] as const) {
    const all = new Set(views.flatMap((v) => Object.keys(v[field] ?? {})));
    for (const key of all) {
      const values = new Set(views.map((v) => v[field]?.[key]));
      if (values.size > 1) keys.add(`${field}.${key}`);
    }
  }
  return [...keys].sort(byString);
}

function nodeEntry(s: Sighting): DeviceNodeStatus {
  const { deviceNodes, mounts } = s.device;
  return {
    name: s.node,
    ...(deviceNodes !== undefined && deviceNodes.length > 0 ? { deviceNodes } : {}),
    ...(mounts !== undefined && mounts.length > 0 ? { mounts } : {}),
  };
}

const byNode = (a: DeviceNodeStatus, b: DeviceNodeStatus): number => byString(a.name, b.name);

/** The Device as today's agents write it (src/agent/device-view.ts), nodes from the slices. */
function deviceOf(
  discovery: Discovery,
  name: string,
  shared: boolean,
  view: SliceDevice,
  nodes: DeviceNodeStatus[],
): Device {
  const handler = discovery.spec.handler.name;
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata: {
      name,
      namespace: discovery.metadata.namespace ?? 'default',
      labels: {
        ...view.labels,
        [LABEL_DISCOVERY]: discovery.metadata.name,
        [LABEL_HANDLER]: handler,
      },
    },
    spec: {
      discovery: discovery.metadata.name,
      handler,
      shared,
      id: view.id,
      properties: view.properties ?? {},
      capacity: discovery.spec.capacity ?? 1,
    },
    status: { nodes },
  };
}
