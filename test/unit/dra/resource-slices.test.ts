import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NodeDevice } from '../../../src/dra/node-device.ts';
import { draDeviceName, sliceName, wantedPool } from '../../../src/dra/resource-slices.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function device(namespace: string, name: string): NodeDevice {
  return {
    namespace,
    name,
    spec: { discovery: 'd', handler: 'simulated', shared: false, id: name, properties: {} },
    node: {},
  };
}

describe('a node’s ResourceSlices', () => {
  it('gives every device a DNS-label name, stable and distinct across namespaces', () => {
    const long = `cams.${'x'.repeat(240)}-0123456789`;
    for (const name of [long, 'a', '...', 'cams-0a1b2c3d4e'])
      assert.match(draDeviceName('ns', name), DNS_LABEL);
    assert.equal(draDeviceName('ns', 'cam'), draDeviceName('ns', 'cam'));
    assert.notEqual(draDeviceName('a', 'cam'), draDeviceName('b', 'cam'));
  });

  it('splits 300 devices into slices of 128, 128 and 44, sorted and without duplicates', () => {
    const devices = Array.from({ length: 300 }, (_, i) => device('ns', `dev-${i}`));
    const pool = wantedPool('edge-1', [...devices, devices[0] as NodeDevice]);
    assert.deepEqual(
      pool.slices.map((s) => s.devices.length),
      [128, 128, 44],
    );
    const names = pool.slices.flatMap((s) => s.devices.map((d) => d.name));
    assert.deepEqual(names, [...names].sort());
    assert.equal(new Set(names).size, 300);
    assert.equal(pool.byName.size, 300);
    assert.deepEqual(
      pool.slices.map((s) => s.name),
      [0, 1, 2].map((i) => sliceName('edge-1', i)),
    );
  });

  it('has no slice for a node that sees nothing', () => {
    assert.deepEqual(wantedPool('edge-1', []).slices, []);
  });

  it('names slices as DNS subdomains even for a 253-character node name', () => {
    const node = `${'n'.repeat(60)}.${'o'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(70)}`;
    const name = sliceName(node, 7);
    assert.ok(name.length <= 253);
    assert.match(name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    assert.notEqual(sliceName(node, 0), sliceName(`${node.slice(0, -1)}x`, 0));
  });
});
