import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  API_VERSION,
  LABEL_DISCOVERY,
  LABEL_NODE,
  type Device,
  type DeviceSlice,
  type Discovery,
} from '../../../src/api/types.ts';
import {
  objectDiffers,
  replacement,
  statusDiffers,
  wantedDevice,
} from '../../../src/controller/device-diff.ts';
import { discoveryStatus } from '../../../src/controller/discovery-status.ts';
import { fold } from '../../../src/controller/fold.ts';
import { readinessOf, type NodeObject } from '../../../src/controller/node-readiness.ts';
import { ObjectCache } from '../../../src/controller/object-cache.ts';
import {
  slimDevice,
  slimDiscovery,
  slimNode,
  slimSlice,
} from '../../../src/controller/slim-objects.ts';

const NOW = Date.parse('2026-12-03T12:00:00Z');

/** managedFields as the API server writes them: one entry per manager and operation. */
const managed = (manager: string, fields: object) => [
  {
    manager,
    operation: 'Update',
    apiVersion: API_VERSION,
    time: '2026-12-03T11:00:00Z',
    fieldsType: 'FieldsV1',
    fieldsV1: fields,
  },
];

/** A Discovery as served: applied with kubectl, its status written by the controller. */
const servedDiscovery = {
  apiVersion: API_VERSION,
  kind: 'Discovery',
  metadata: {
    name: 'cams',
    namespace: 'site',
    uid: 'disc-uid',
    resourceVersion: '40',
    generation: 3,
    creationTimestamp: '2026-12-03T10:00:00Z',
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":"copy"}\n' },
    managedFields: managed('kubectl-client-side-apply', { 'f:spec': { 'f:handler': {} } }),
  },
  spec: { handler: { name: 'simulated', details: { file: '/x' } }, capacity: 2 },
  status: {
    devices: 2,
    observedGeneration: 3,
    conditions: [
      {
        type: 'NodesReporting',
        status: 'True',
        reason: 'Reporting',
        message: '2 nodes report',
        lastTransitionTime: '2026-12-03T11:00:00Z',
        observedGeneration: 3,
      },
    ],
  },
} as Discovery;

function servedSlice(node: string, shared: boolean): DeviceSlice {
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceSlice',
    metadata: {
      name: `cams-${node}-0`,
      namespace: 'site',
      uid: `slice-${node}`,
      resourceVersion: '31',
      labels: { [LABEL_NODE]: node, [LABEL_DISCOVERY]: 'cams' },
      annotations: { note: 'x' },
      managedFields: managed(node, { 'f:spec': { 'f:devices': { 'k:{"id":"cam-1"}': {} } } }),
    } as DeviceSlice['metadata'],
    spec: {
      node,
      discovery: 'cams',
      shared,
      devices: [
        {
          id: 'cam-1',
          properties: { URL: 'http://cam-1/' },
          labels: { vendor: 'acme' },
          deviceNodes: [{ hostPath: '/dev/video0' }],
          mounts: [{ hostPath: '/run/cam', containerPath: '/cam', readOnly: true }],
        },
        { id: 'cam-2', properties: { URL: `http://cam-2-${node}/` } },
      ],
      deviceCount: 2,
      conditions: [
        {
          type: 'DetailsValid',
          status: 'False',
          reason: 'Invalid',
          message: 'bad file',
          lastTransitionTime: '2026-12-03T11:00:00Z',
        },
      ],
    },
  };
}

const slices = [servedSlice('a', true), servedSlice('b', true), servedSlice('c', false)];

const nodes: NodeObject[] = [
  {
    metadata: { name: 'a', resourceVersion: '7' },
    status: {
      conditions: [
        { type: 'MemoryPressure', status: 'False', lastTransitionTime: '2026-12-03T09:00:00Z' },
        { type: 'Ready', status: 'False', lastTransitionTime: '2026-12-03T11:50:00Z' },
      ],
    },
  },
  { metadata: { name: 'b' } },
];
// What a kubelet's Node carries besides: images, addresses, capacity...
const bigNode = {
  ...nodes[0],
  metadata: { ...nodes[0]?.metadata, labels: { 'kubernetes.io/hostname': 'a' } },
  status: {
    ...nodes[0]?.status,
    images: Array.from({ length: 50 }, (_, i) => ({
      names: [`registry/image-${i}`],
      sizeBytes: i,
    })),
    addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
  },
} as NodeObject;

/** A copy of metadata without its managedFields. */
function withoutManaged(metadata: Device['metadata']): Device['metadata'] {
  const copy: Device['metadata'] & { managedFields?: unknown } = { ...metadata };
  delete copy.managedFields;
  return copy;
}

function foldOf(discovery: Discovery, from: DeviceSlice[], nodeObjects: NodeObject[]) {
  const readiness = new Map(nodeObjects.map((n) => [n.metadata.name, readinessOf(n)]));
  const result = fold({ discovery, slices: from, nodes: readiness, nodeGraceMs: 60_000, now: NOW });
  return {
    result,
    status: discoveryStatus(discovery, result, from, new Date(NOW), undefined),
    wanted: result.devices.map((d) => wantedDevice(d, discovery)),
  };
}

describe('slim objects: what the controller keeps of what it watches', () => {
  it('keeps no managedFields of any kind of object', () => {
    const kept = [
      slimDiscovery(servedDiscovery),
      ...slices.map(slimSlice),
      slimNode(bigNode),
      slimDevice(foldOf(servedDiscovery, slices, nodes).wanted[0] as Device),
    ];
    for (const o of kept) assert.ok(!JSON.stringify(o).includes('managedFields'), o.metadata.name);
    assert.equal(slimDiscovery(servedDiscovery).metadata.annotations, undefined);
    assert.equal(slimNode(bigNode).status?.conditions?.length, 1);
    assert.ok(!JSON.stringify(slimNode(bigNode)).includes('images'));
  });

  it('folds slim slices, Discovery and Nodes into the same Devices, conflicts and status', () => {
    const full = foldOf(servedDiscovery, slices, [bigNode, ...nodes.slice(1)]);
    const slim = foldOf(
      slimDiscovery(servedDiscovery),
      slices.map(slimSlice),
      [bigNode, ...nodes.slice(1)].map(slimNode),
    );
    // Node a has been NotReady for 10 minutes: dropped, in both.
    assert.deepEqual(full.result.status.droppedNodes, ['a']);
    assert.equal(full.result.devices.length, 4);
    assert.deepEqual(slim, full);
    // Without Node objects every node counts: a and b disagree on cam-2.
    const withConflict = foldOf(servedDiscovery, slices, []);
    assert.equal(withConflict.result.conflicts.length, 1);
    assert.deepEqual(
      foldOf(slimDiscovery(servedDiscovery), slices.map(slimSlice), []),
      withConflict,
    );
    assert.deepEqual(
      [bigNode, ...nodes].map((n) => readinessOf(slimNode(n))),
      [bigNode, ...nodes].map((n) => readinessOf(n)),
    );
  });

  it('keeps of a Device all that a diff and a replace read, annotations and status included', () => {
    const wanted = foldOf(servedDiscovery, slices, nodes).wanted[0] as Device;
    const stored = {
      ...wanted,
      metadata: {
        ...wanted.metadata,
        uid: 'dev-uid',
        resourceVersion: '55',
        generation: 1,
        annotations: { 'example.com/owner': 'team-a' },
        labels: { ...wanted.metadata.labels, extra: 'by hand' },
        managedFields: managed('edgebridge-controller', { 'f:spec': {} }),
      },
      status: { ...wanted.status, usage: { '0': 'site/pod-1' } },
    } as Device;
    const slim = slimDevice(stored);
    assert.deepEqual(slim, { ...stored, metadata: withoutManaged(stored.metadata) });
    assert.equal(objectDiffers(slim, wanted), objectDiffers(stored, wanted));
    assert.equal(objectDiffers(slim, wanted), true, 'the hand-made label differs');
    assert.equal(statusDiffers(slim, wanted), statusDiffers(stored, wanted));
    // The API server keeps the stored managedFields of an update that sends none.
    const full = replacement(stored, wanted);
    assert.deepEqual(replacement(slim, wanted), {
      ...full,
      metadata: withoutManaged(full.metadata),
    });
    assert.deepEqual(replacement(slim, wanted).metadata.annotations, {
      'example.com/owner': 'team-a',
    });
  });

  it('the cache keeps the slim copy of a write answer', () => {
    const cache = new ObjectCache<Discovery>(slimDiscovery);
    cache.replace([slimDiscovery(servedDiscovery)]);
    cache.wrote('site/cams', {
      ...servedDiscovery,
      metadata: { ...servedDiscovery.metadata, resourceVersion: '41' },
    });
    const kept = cache.get('site/cams');
    assert.equal(kept?.metadata.resourceVersion, '41');
    assert.ok(!JSON.stringify(kept).includes('managedFields'));
    assert.equal(kept?.metadata.annotations, undefined);
  });
});
