import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceName } from '../../../src/api/names.ts';
import {
  API_VERSION,
  LABEL_DISCOVERY,
  LABEL_HANDLER,
  LABEL_NODE,
  MAX_SLICE_DEVICES,
  type DeviceSlice,
  type Discovery,
  type SliceDevice,
} from '../../../src/api/types.ts';
import { fold, type FoldInput } from '../../../src/controller/fold.ts';
import { readinessOf, type NodeReadiness } from '../../../src/controller/node-readiness.ts';

const NOW = Date.parse('2026-12-03T12:00:00Z');
const GRACE = 5 * 60_000;

const discovery: Discovery = {
  apiVersion: API_VERSION,
  kind: 'Discovery',
  metadata: { name: 'cams', namespace: 'site' },
  spec: { handler: { name: 'simulated' }, capacity: 2 },
};

const cam = (id: string, properties: Record<string, string> = { URL: `http://${id}/` }) =>
  ({ id, properties }) satisfies SliceDevice;

function slice(
  node: string,
  devices: SliceDevice[],
  opts: { name?: string; shared?: boolean; discovery?: string; namespace?: string } = {},
): DeviceSlice {
  const disc = opts.discovery ?? 'cams';
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceSlice',
    metadata: {
      name: opts.name ?? `${disc}-${node}-0`,
      namespace: opts.namespace ?? 'site',
      labels: { [LABEL_NODE]: node, [LABEL_DISCOVERY]: disc },
    },
    spec: {
      node,
      discovery: disc,
      shared: opts.shared ?? true,
      devices,
      deviceCount: devices.length,
    },
  };
}

function run(slices: DeviceSlice[], nodes: [string, NodeReadiness][] = []) {
  const input: FoldInput = {
    discovery,
    slices,
    nodes: new Map(nodes),
    nodeGraceMs: GRACE,
    now: NOW,
  };
  return fold(input);
}

const shared = (id: string) => deviceName('cams', id, true, '');
const nodesOf = (result: ReturnType<typeof fold>, name: string) =>
  result.devices.find((d) => d.metadata.name === name)?.status?.nodes?.map((n) => n.name);

/** A deterministic shuffle (reversal and rotation), enough to show order does not matter. */
const reordered = <T>(list: T[]): T[][] => [
  [...list].reverse(),
  [...list.slice(1), ...list.slice(0, 1)],
];

describe('the fold of DeviceSlices into Devices', () => {
  it("makes one Device per shared device, as today's agents name and label it", () => {
    const result = run([
      slice('edge-1', [{ ...cam('cam-1'), labels: { model: 'x1', [LABEL_DISCOVERY]: 'forged' } }]),
    ]);
    assert.deepEqual(result.devices, [
      {
        apiVersion: API_VERSION,
        kind: 'Device',
        metadata: {
          name: shared('cam-1'),
          namespace: 'site',
          labels: { model: 'x1', [LABEL_DISCOVERY]: 'cams', [LABEL_HANDLER]: 'simulated' },
        },
        spec: {
          discovery: 'cams',
          handler: 'simulated',
          shared: true,
          id: 'cam-1',
          properties: { URL: 'http://cam-1/' },
          capacity: 2,
        },
        status: { nodes: [{ name: 'edge-1' }] },
      },
    ]);
    assert.deepEqual(result.conflicts, []);
  });

  it('lists every node whose slices hold a shared device, sorted, each with its own device files', () => {
    const withFiles = (node: string) => ({
      ...cam('cam-1'),
      deviceNodes: [{ hostPath: `/dev/video-${node}` }],
      mounts: [],
    });
    const result = run([
      slice('edge-3', [withFiles('edge-3')]),
      // Slice names need not sort as their nodes do.
      slice('edge-1', [cam('cam-1')], { name: 'cams-zz' }),
      slice('edge-2', [withFiles('edge-2'), cam('cam-2')]),
    ]);
    assert.deepEqual(
      result.devices.find((d) => d.metadata.name === shared('cam-1'))?.status?.nodes,
      [
        { name: 'edge-1' },
        { name: 'edge-2', deviceNodes: [{ hostPath: '/dev/video-edge-2' }] },
        { name: 'edge-3', deviceNodes: [{ hostPath: '/dev/video-edge-3' }] },
      ],
    );
    assert.deepEqual(nodesOf(result, shared('cam-2')), ['edge-2']);
    assert.equal(result.devices.length, 2);
  });

  it('makes one Device per node for a local device, the node in its name', () => {
    const usb = { id: '1d6b:0002:serial', properties: { USB_VENDOR_ID: '1d6b' } };
    const result = run([
      slice('edge-1', [usb], { shared: false }),
      slice('edge-2', [usb], { shared: false }),
    ]);
    const names = result.devices.map((d) => d.metadata.name);
    assert.deepEqual(
      names,
      [
        deviceName('cams', usb.id, false, 'edge-1'),
        deviceName('cams', usb.id, false, 'edge-2'),
      ].sort(),
    );
    assert.notEqual(names[0], names[1]);
    for (const device of result.devices) {
      assert.equal(device.spec.shared, false);
      assert.equal(device.status?.nodes?.length, 1);
    }
    assert.deepEqual(result.devices.map((d) => d.status?.nodes?.[0]?.name).sort(), [
      'edge-1',
      'edge-2',
    ]);
  });

  it('takes the view most nodes report when they disagree, and reports the conflict', () => {
    const slices = [
      slice('edge-a', [cam('cam-1', { URL: 'http://old/', MODEL: 'x' })]),
      slice('edge-b', [cam('cam-1', { URL: 'http://new/', MODEL: 'x' })]),
      slice('edge-c', [cam('cam-1', { URL: 'http://new/', MODEL: 'x' })]),
    ];
    const result = run(slices);
    assert.deepEqual(result.devices[0]?.spec.properties, { URL: 'http://new/', MODEL: 'x' });
    assert.deepEqual(
      result.devices[0]?.status?.nodes?.map((n) => n.name),
      ['edge-a', 'edge-b', 'edge-c'],
    );
    assert.deepEqual(result.conflicts, [
      {
        device: shared('cam-1'),
        id: 'cam-1',
        chosen: ['edge-b', 'edge-c'],
        overruled: ['edge-a'],
        keys: ['properties.URL'],
      },
    ]);
    for (const order of reordered(slices)) assert.deepEqual(run(order), result);
  });

  it('breaks a tie by the node whose name sorts first, whatever the order of the slices', () => {
    const slices = [
      slice('edge-b', [{ ...cam('cam-1'), labels: { zone: 'b' } }]),
      slice('edge-a', [{ ...cam('cam-1', { URL: 'http://a/' }), labels: { zone: 'a' } }]),
    ];
    const result = run(slices);
    assert.deepEqual(result.devices[0]?.spec.properties, { URL: 'http://a/' });
    assert.equal(result.devices[0]?.metadata.labels?.zone, 'a');
    assert.deepEqual(result.conflicts[0]?.chosen, ['edge-a']);
    assert.deepEqual(result.conflicts[0]?.overruled, ['edge-b']);
    assert.deepEqual(result.conflicts[0]?.keys, ['labels.zone', 'properties.URL']);
    for (const order of reordered(slices)) assert.deepEqual(run(order), result);
  });

  it('sees no conflict where views differ only in an empty map', () => {
    const result = run([
      slice('edge-a', [{ id: 'cam-1', properties: {} }]),
      slice('edge-b', [{ id: 'cam-1', labels: {} }]),
    ]);
    assert.deepEqual(result.conflicts, []);
    assert.deepEqual(result.devices[0]?.spec.properties, {});
  });

  it("folds a node's 200 devices from a full slice of 128 and a second of 72", () => {
    const ids = Array.from({ length: 200 }, (_, i) => `cam-${String(i).padStart(3, '0')}`);
    const first = slice(
      'edge-1',
      ids.slice(0, MAX_SLICE_DEVICES).map((id) => cam(id)),
      {
        name: 'cams-edge-1-0',
      },
    );
    const second = slice(
      'edge-1',
      ids.slice(MAX_SLICE_DEVICES).map((id) => cam(id)),
      {
        name: 'cams-edge-1-1',
      },
    );
    const result = run([second, first]);
    assert.equal(result.devices.length, 200);
    assert.deepEqual(result.devices.map((d) => d.spec.id).sort(), ids);
    assert.deepEqual(result.status.reportingNodes, ['edge-1']);
  });

  it('counts a device once while it moves between two of a node’s slices, the first slice’s copy winning', () => {
    const result = run([
      slice('edge-1', [cam('cam-1', { URL: 'http://second/' })], { name: 'cams-edge-1-1' }),
      slice('edge-1', [cam('cam-1', { URL: 'http://first/' })], { name: 'cams-edge-1-0' }),
    ]);
    assert.equal(result.devices.length, 1);
    assert.deepEqual(result.devices[0]?.status?.nodes, [{ name: 'edge-1' }]);
    assert.deepEqual(result.devices[0]?.spec.properties, { URL: 'http://first/' });
    assert.deepEqual(result.conflicts, []);
  });

  it('ignores slices of other Discoveries, other namespaces, and slices being deleted', () => {
    const deleting = slice('edge-3', [cam('cam-3')]);
    deleting.metadata.deletionTimestamp = '2026-12-03T11:59:00Z';
    const result = run([
      slice('edge-1', [cam('cam-1')], { discovery: 'other' }),
      slice('edge-2', [cam('cam-2')], { namespace: 'elsewhere' }),
      deleting,
      slice('edge-4', [cam('cam-4')]),
    ]);
    assert.deepEqual(
      result.devices.map((d) => d.spec.id),
      ['cam-4'],
    );
    assert.deepEqual(result.status.reportingNodes, ['edge-4']);
  });

  it('drops a node NotReady for longer than the grace period, and only then', () => {
    const slices = [slice('edge-1', [cam('cam-1'), cam('cam-2')]), slice('edge-2', [cam('cam-1')])];
    const notReadyFor = (ms: number): NodeReadiness => ({ ready: false, since: NOW - ms });

    const within = run(slices, [['edge-1', notReadyFor(GRACE)]]);
    assert.deepEqual(nodesOf(within, shared('cam-1')), ['edge-1', 'edge-2']);
    assert.equal(within.devices.length, 2);
    assert.deepEqual(within.status.droppedNodes, []);

    const past = run(slices, [
      ['edge-1', notReadyFor(GRACE + 1)],
      ['edge-2', { ready: true, since: NOW - 10 * GRACE }],
    ]);
    // The shared device keeps its other node; the device only edge-1 saw is gone.
    assert.deepEqual(
      past.devices.map((d) => d.spec.id),
      ['cam-1'],
    );
    assert.deepEqual(nodesOf(past, shared('cam-1')), ['edge-2']);
    assert.deepEqual(past.status, {
      devices: 1,
      reportingNodes: ['edge-2'],
      droppedNodes: ['edge-1'],
    });

    // Ready again: back, from the slices it kept, with no rediscovery.
    const back = run(slices, [['edge-1', { ready: true, since: NOW }]]);
    assert.deepEqual(back, run(slices));
  });

  it('keeps the devices of a node that has no Node object', () => {
    const result = run(
      [slice('standalone-host', [cam('cam-1')])],
      [['edge-9', { ready: false, since: 0 }]],
    );
    assert.deepEqual(nodesOf(result, shared('cam-1')), ['standalone-host']);
  });

  it('reports the Device count and the nodes that report, an empty slice included', () => {
    const result = run([
      slice('edge-2', []),
      slice('edge-1', [cam('cam-1'), cam('cam-2')]),
      slice('edge-1', [cam('cam-3')], { name: 'cams-edge-1-1' }),
    ]);
    assert.deepEqual(result.status, {
      devices: 3,
      reportingNodes: ['edge-1', 'edge-2'],
      droppedNodes: [],
    });
    assert.deepEqual(run([]).status, { devices: 0, reportingNodes: [], droppedNodes: [] });
  });

  it('gives Devices sorted by name', () => {
    const result = run([
      slice(
        'edge-1',
        ['d', 'a', 'c', 'b'].map((id) => cam(id)),
      ),
    ]);
    const names = result.devices.map((d) => d.metadata.name);
    assert.deepEqual(names, [...names].sort());
  });
});

describe("a Node's readiness", () => {
  it('comes from its Ready condition: True is ready, False and Unknown are not, since the last transition', () => {
    const at = '2026-12-03T11:00:00Z';
    const node = (status: string) => ({
      metadata: { name: 'n' },
      status: { conditions: [{ type: 'Ready', status, lastTransitionTime: at }] },
    });
    assert.deepEqual(readinessOf(node('True')), { ready: true, since: Date.parse(at) });
    assert.deepEqual(readinessOf(node('False')), { ready: false, since: Date.parse(at) });
    assert.deepEqual(readinessOf(node('Unknown')), { ready: false, since: Date.parse(at) });
  });

  it('is ready for a Node that has no Ready condition yet', () => {
    assert.deepEqual(readinessOf({ metadata: { name: 'n' } }), { ready: true, since: 0 });
  });
});
