import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sliceName } from '../../../src/api/names.ts';
import {
  LABEL_DISCOVERY,
  LABEL_HANDLER,
  LABEL_NODE,
  MAX_SLICE_DEVICES,
  type DeviceSlice,
  type SliceDevice,
} from '../../../src/api/types.ts';
import { layoutSlices, type LayoutInput } from '../../../src/agent/slice-layout.ts';

const base = {
  namespace: 'site',
  discovery: { name: 'cams', uid: 'disc-uid' },
  node: 'edge-1',
  nodeUid: 'node-uid',
  shared: true,
  handler: 'onvif',
  conditions: [],
} satisfies Omit<LayoutInput, 'devices' | 'stored'>;

const devices = (n: number, from = 0): SliceDevice[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `cam-${String(from + i).padStart(4, '0')}`,
    properties: {},
  }));

/** What the store would hold after the writes: puts stored with a new version, deletes gone. */
function store(stored: DeviceSlice[], input: LayoutInput): DeviceSlice[] {
  const { put, delete: gone } = layoutSlices(input);
  const byName = new Map(stored.map((s) => [s.metadata.name, s]));
  for (const name of gone) byName.delete(name);
  for (const s of put)
    byName.set(s.metadata.name, {
      ...s,
      metadata: {
        ...s.metadata,
        resourceVersion: String(Number(s.metadata.resourceVersion ?? 0) + 1),
      },
    });
  return [...byName.values()];
}

describe('layoutSlices', () => {
  it('writes one empty first slice for a node with no devices, labelled and owned by Discovery and Node', () => {
    const { put, delete: gone } = layoutSlices({ ...base, devices: [], stored: [] });
    assert.deepEqual(gone, []);
    assert.equal(put.length, 1);
    const [slice] = put;
    assert.equal(slice?.metadata.name, 'cams-edge-1-0');
    assert.deepEqual(slice?.metadata.labels, {
      [LABEL_NODE]: 'edge-1',
      [LABEL_DISCOVERY]: 'cams',
      [LABEL_HANDLER]: 'onvif',
    });
    assert.deepEqual(
      slice?.metadata.ownerReferences?.map((o) => `${o.kind}/${o.name}/${o.uid}`),
      ['Discovery/cams/disc-uid', 'Node/edge-1/node-uid'],
    );
    assert.equal(slice?.spec.deviceCount, 0);
  });

  it('labels a stored slice that lacks the handler label (one written before it existed), and then writes nothing', () => {
    const input = { ...base, devices: devices(3), stored: [] };
    const [first] = store([], input);
    assert.ok(first !== undefined);
    const labels = Object.fromEntries(
      Object.entries(first.metadata.labels ?? {}).filter(([k]) => k !== LABEL_HANDLER),
    );
    const old = { ...first, metadata: { ...first.metadata, labels } };
    const { put } = layoutSlices({ ...input, stored: [old] });
    assert.deepEqual(
      put.map((s) => [s.metadata.name, s.metadata.labels?.[LABEL_HANDLER]]),
      [['cams-edge-1-0', 'onvif']],
    );
    assert.deepEqual(
      layoutSlices({ ...input, stored: store([old], { ...input, stored: [old] }) }),
      {
        put: [],
        delete: [],
      },
    );
  });

  it('puts at most 128 devices in a slice, and writes nothing when the store already says it', () => {
    const input = { ...base, devices: devices(300), stored: [] };
    const stored = store([], input);
    assert.deepEqual(
      stored.map((s) => s.spec.deviceCount),
      [MAX_SLICE_DEVICES, MAX_SLICE_DEVICES, 300 - 2 * MAX_SLICE_DEVICES],
    );
    const again = layoutSlices({ ...input, stored });
    assert.deepEqual(again, { put: [], delete: [] });
  });

  it('writes only the slice a change touches: a device leaving, and one arriving where there is room', () => {
    const first = store([], { ...base, devices: devices(300), stored: [] });
    const changed = devices(300).filter((d) => d.id !== 'cam-0005');
    changed.push({ id: 'cam-9999', properties: {} });
    const { put, delete: gone } = layoutSlices({ ...base, devices: changed, stored: first });
    assert.deepEqual(gone, []);
    assert.deepEqual(
      put.map((s) => s.metadata.name),
      [sliceName('cams', 'edge-1', 0)],
      'the new device takes the place the leaving one made in the first slice',
    );
    assert.equal(put[0]?.metadata.resourceVersion, '1', 'a replace of the stored version');
  });

  it('deletes a slice left empty, but never the first', () => {
    const first = store([], { ...base, devices: devices(200), stored: [] });
    const { put, delete: gone } = layoutSlices({ ...base, devices: [], stored: first });
    assert.deepEqual(gone, [sliceName('cams', 'edge-1', 1)]);
    assert.deepEqual(
      put.map((s) => [s.metadata.name, s.spec.deviceCount]),
      [[sliceName('cams', 'edge-1', 0), 0]],
    );
  });

  it('puts back a slice deleted by hand, and undoes a hand edit', () => {
    const first = store([], { ...base, devices: devices(200), stored: [] });
    const [zero, one] = first;
    assert.ok(zero !== undefined && one !== undefined);
    const edited: DeviceSlice = { ...one, spec: { ...one.spec, devices: [], deviceCount: 0 } };
    const { put } = layoutSlices({ ...base, devices: devices(200), stored: [edited] });
    assert.deepEqual(
      put.map((s) => [s.metadata.name, s.spec.deviceCount]),
      [
        [sliceName('cams', 'edge-1', 0), MAX_SLICE_DEVICES],
        [sliceName('cams', 'edge-1', 1), 200 - MAX_SLICE_DEVICES],
      ],
    );
  });

  it('carries the conditions on the first slice only', () => {
    const conditions = [
      {
        type: 'DetailsValid',
        status: 'True' as const,
        reason: 'Valid',
        message: 'ok',
        lastTransitionTime: '2026-12-03T12:00:00Z',
      },
    ];
    const { put } = layoutSlices({ ...base, conditions, devices: devices(200), stored: [] });
    assert.deepEqual(
      put.map((s) => s.spec.conditions?.length ?? 0),
      [1, 0],
    );
  });
});
