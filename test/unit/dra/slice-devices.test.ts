import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deviceName } from '../../../src/api/names.ts';
import { API_VERSION, type DeviceSlice } from '../../../src/api/types.ts';
import { layoutSlices } from '../../../src/agent/slice-layout.ts';
import { attributesOf } from '../../../src/dra/attributes.ts';
import { sliceDevices } from '../../../src/dra/slice-devices.ts';

function slice(node: string, shared: boolean, ids: string[]): DeviceSlice {
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceSlice',
    metadata: { name: `s-${node}`, namespace: 'lab', labels: { 'edgebridge.io/handler': 'usb' } },
    spec: {
      node,
      discovery: 'sticks',
      shared,
      deviceCount: ids.length,
      devices: ids.map((id) => ({
        id,
        properties: { USB_SERIAL: id },
        deviceNodes: [{ hostPath: `/dev/${id}` }],
      })),
    },
  };
}

describe('the devices of a node’s DeviceSlices', () => {
  it('names each device as its Device is named and keeps its properties and device nodes', () => {
    const [d] = sliceDevices('edge-1', [slice('edge-1', false, ['SER1'])]);
    assert.equal(d?.name, deviceName('sticks', 'SER1', false, 'edge-1'));
    assert.equal(d?.namespace, 'lab');
    assert.equal(d?.spec.handler, 'usb');
    assert.deepEqual(d?.spec.properties, { USB_SERIAL: 'SER1' });
    assert.deepEqual(d?.node.deviceNodes, [{ hostPath: '/dev/SER1' }]);
  });

  it('ignores other nodes’ slices', () => {
    const got = sliceDevices('edge-1', [
      slice('edge-1', true, ['a', 'b']),
      slice('edge-2', true, ['c']),
    ]);
    assert.deepEqual(
      got.map((d) => d.spec.id),
      ['a', 'b'],
    );
  });

  it('gives each device the handler of the slice the agent wrote, as the DRA attribute `handler`', () => {
    const { put } = layoutSlices({
      namespace: 'lab',
      discovery: { name: 'cams', uid: 'u' },
      node: 'edge-1',
      nodeUid: undefined,
      shared: true,
      handler: 'onvif',
      // A device that claims another handler in its own labels does not win over the agent's.
      devices: [{ id: 'cam-1', properties: {}, labels: { 'edgebridge.io/handler': 'mqtt' } }],
      conditions: [],
      stored: [],
    });
    const [d] = sliceDevices('edge-1', put);
    assert.ok(d !== undefined);
    assert.equal(d.spec.handler, 'onvif');
    assert.deepEqual(attributesOf(d).attributes.handler, {
      string: 'onvif',
    });
  });
});
