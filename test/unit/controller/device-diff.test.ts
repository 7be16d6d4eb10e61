import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { API_VERSION, type Device, type Discovery } from '../../../src/api/types.ts';
import {
  objectDiffers,
  replacement,
  statusDiffers,
  wantedDevice,
} from '../../../src/controller/device-diff.ts';

const discovery: Discovery = {
  apiVersion: API_VERSION,
  kind: 'Discovery',
  metadata: { name: 'cams', namespace: 'site', uid: 'u-1' },
  spec: { handler: { name: 'simulated' } },
};

const folded: Device = {
  apiVersion: API_VERSION,
  kind: 'Device',
  metadata: {
    name: 'cams-0123456789',
    namespace: 'site',
    labels: { 'edgebridge.io/discovery': 'cams' },
  },
  spec: {
    discovery: 'cams',
    handler: 'simulated',
    shared: true,
    id: 'cam-1',
    properties: { URL: 'u' },
    capacity: 1,
  },
  status: { nodes: [{ name: 'a' }] },
};

describe('device-diff', () => {
  const wanted = wantedDevice(folded, discovery);
  const stored: Device = {
    ...wanted,
    metadata: { ...wanted.metadata, uid: 'd-1', resourceVersion: '7' },
    status: { ...wanted.status, usage: { 'slot-0': 'ns/pod' } },
  };

  it('owns the Device by its Discovery as controller and names its topics', () => {
    assert.deepEqual(wanted.metadata.ownerReferences, [
      {
        apiVersion: API_VERSION,
        kind: 'Discovery',
        name: 'cams',
        uid: 'u-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    assert.equal(wanted.status?.topics?.state, 'edgebridge/v1/site/cams-0123456789/state');
  });

  it('finds nothing to write for a stored copy of what is wanted (usage and server fields aside)', () => {
    assert.equal(objectDiffers(stored, wanted), false);
    assert.equal(statusDiffers(stored, wanted), false);
  });

  it('sees a hand edit of the spec, a stray label, an old owner reference and a node change', () => {
    assert.equal(
      objectDiffers({ ...stored, spec: { ...stored.spec, properties: { URL: 'x' } } }, wanted),
      true,
    );
    assert.equal(
      objectDiffers(
        {
          ...stored,
          metadata: { ...stored.metadata, labels: { ...stored.metadata.labels, x: 'y' } },
        },
        wanted,
      ),
      true,
    );
    const oldOwner = { apiVersion: API_VERSION, kind: 'Discovery', name: 'cams', uid: 'u-1' };
    assert.equal(
      objectDiffers(
        { ...stored, metadata: { ...stored.metadata, ownerReferences: [oldOwner] } },
        wanted,
      ),
      true,
    );
    assert.equal(
      statusDiffers({ ...stored, status: { ...stored.status, nodes: [{ name: 'b' }] } }, wanted),
      true,
    );
  });

  it('replaces spec, labels and the Discovery owner, and keeps the rest of the stored object', () => {
    const other = { apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'c-1' };
    const edited: Device = {
      ...stored,
      metadata: { ...stored.metadata, ownerReferences: [other] },
      spec: { ...stored.spec, properties: { URL: 'x' } },
    };
    const r = replacement(edited, wanted);
    assert.equal(r.metadata.resourceVersion, '7');
    assert.deepEqual(r.spec, wanted.spec);
    assert.deepEqual(r.metadata.ownerReferences, [
      other,
      ...(wanted.metadata.ownerReferences ?? []),
    ]);
    assert.deepEqual(r.status?.usage, { 'slot-0': 'ns/pod' });
    assert.equal(objectDiffers(r, wanted), false);
  });
});
