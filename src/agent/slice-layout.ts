// Which DeviceSlices one node should hold for one Discovery, given what it
// wants to report and what is stored: pure, so that "a change writes only the
// slices it touches" and "steady state writes nothing" are unit-tested.
import { sliceName } from '../api/names.ts';
import {
  API_VERSION,
  LABEL_DISCOVERY,
  LABEL_HANDLER,
  LABEL_NODE,
  MAX_SLICE_DEVICES,
  type Condition,
  type DeviceSlice,
  type OwnerReference,
  type SliceDevice,
} from '../api/types.ts';
import { canonicalJson } from '../util/canonical-json.ts';

export interface LayoutInput {
  namespace: string;
  discovery: { name: string; uid: string };
  node: string;
  /** The uid of the node's Node object; undefined where there is none (standalone). */
  nodeUid: string | undefined;
  shared: boolean;
  /** The Discovery's handler, as the label edgebridge.io/handler (DRA's `handler` attribute reads it). */
  handler: string;
  /** What the node reports now (ids unique). */
  devices: readonly SliceDevice[];
  /** The node's conditions for the Discovery, carried on its first slice. */
  conditions: readonly Condition[];
  /** The node's stored slices of this Discovery. */
  stored: readonly DeviceSlice[];
}

export interface Layout {
  /** Slices to create (no resourceVersion) or replace (the stored one's resourceVersion). */
  put: DeviceSlice[];
  /** Names of stored slices to delete. */
  delete: string[];
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The index of a slice named by sliceName() for this discovery and node, or undefined. */
function indexOf(name: string, discovery: string, node: string): number | undefined {
  const m = /-(\d{1,6})$/.exec(name);
  if (m === null) return undefined;
  const i = Number(m[1]);
  return sliceName(discovery, node, i) === name ? i : undefined;
}

/** Owned by the Discovery (its controller) and by the Node where there is one, so that deleting either removes the slice. */
export function sliceOwners(
  discovery: { name: string; uid: string },
  node: string,
  nodeUid: string | undefined,
): OwnerReference[] {
  const owners: OwnerReference[] = [
    {
      apiVersion: API_VERSION,
      kind: 'Discovery',
      name: discovery.name,
      uid: discovery.uid,
      controller: true,
    },
  ];
  if (nodeUid !== undefined)
    owners.push({ apiVersion: 'v1', kind: 'Node', name: node, uid: nodeUid });
  return owners;
}

/** What a slice says, for "did anything change": labels we set, owners and spec. */
function content(slice: DeviceSlice): string {
  const labels = slice.metadata.labels ?? {};
  return canonicalJson({
    labels: {
      [LABEL_NODE]: labels[LABEL_NODE],
      [LABEL_DISCOVERY]: labels[LABEL_DISCOVERY],
      [LABEL_HANDLER]: labels[LABEL_HANDLER],
    },
    owners: slice.metadata.ownerReferences ?? [],
    spec: slice.spec,
  });
}

/**
 * The writes that make the stored slices say `devices`: a device stays in the
 * slice that holds it, a new one goes to the first slice with room (a new
 * slice when none has), a slice left empty is deleted, except the first: a
 * node with no devices still holds one empty slice, so that it counts as
 * reporting. A stored slice that already says the right thing is not written.
 */
export function layoutSlices(input: LayoutInput): Layout {
  const { discovery, node } = input;
  const wanted = new Map(input.devices.map((d) => [d.id, d]));
  const slots = new Map<number, string[]>();
  const stored = new Map<number, DeviceSlice>();
  const doomed: string[] = [];
  const placed = new Set<string>();
  const sorted = [...input.stored].sort((a, b) => byString(a.metadata.name, b.metadata.name));
  for (const slice of sorted) {
    const i = indexOf(slice.metadata.name, discovery.name, node);
    if (i === undefined || stored.has(i)) {
      doomed.push(slice.metadata.name);
      continue;
    }
    stored.set(i, slice);
    const ids: string[] = [];
    for (const d of slice.spec.devices ?? []) {
      if (!wanted.has(d.id) || placed.has(d.id) || ids.length >= MAX_SLICE_DEVICES) continue;
      placed.add(d.id);
      ids.push(d.id);
    }
    slots.set(i, ids);
  }
  if (!slots.has(0)) slots.set(0, []);
  const fresh = [...wanted.keys()].filter((id) => !placed.has(id)).sort(byString);
  let next = 0;
  for (const id of fresh) {
    for (;;) {
      const ids = slots.get(next) ?? [];
      if (ids.length < MAX_SLICE_DEVICES) {
        ids.push(id);
        slots.set(next, ids);
        break;
      }
      next++;
    }
  }
  const put: DeviceSlice[] = [];
  const owners = sliceOwners(discovery, node, input.nodeUid);
  for (const [i, ids] of [...slots].sort((a, b) => a[0] - b[0])) {
    const current = stored.get(i);
    if (ids.length === 0 && i !== 0) {
      if (current !== undefined) doomed.push(current.metadata.name);
      continue;
    }
    const devices = ids.sort(byString).map((id) => wanted.get(id) as SliceDevice);
    const slice: DeviceSlice = {
      apiVersion: API_VERSION,
      kind: 'DeviceSlice',
      metadata: {
        name: sliceName(discovery.name, node, i),
        namespace: input.namespace,
        labels: {
          ...current?.metadata.labels,
          [LABEL_NODE]: node,
          [LABEL_DISCOVERY]: discovery.name,
          [LABEL_HANDLER]: input.handler,
        },
        ownerReferences: owners,
        ...(current?.metadata.resourceVersion !== undefined
          ? { resourceVersion: current.metadata.resourceVersion }
          : {}),
      },
      spec: {
        node,
        discovery: discovery.name,
        shared: input.shared,
        devices,
        deviceCount: devices.length,
        ...(i === 0 && input.conditions.length > 0 ? { conditions: [...input.conditions] } : {}),
      },
    };
    if (current === undefined || content(current) !== content(slice)) put.push(slice);
  }
  return { put, delete: doomed.sort(byString) };
}
