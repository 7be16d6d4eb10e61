import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { containerResponse } from '../../../src/deviceplugin/allocation.ts';

const BROKER = 'mqtt://10.0.0.1:1883';

describe('what a container is given for its devices', () => {
  it('sets the properties, the broker URL and the topic prefix for one device', () => {
    const res = containerResponse(
      [
        {
          namespace: 'ns',
          name: 'usb-0123456789',
          discovery: 'usb',
          capacity: 1,
          properties: { USB_VENDOR_ID: '0x1234', 'not an env name': 'x' },
          deviceNodes: [{ hostPath: '/dev/bus/usb/001/002' }],
          mounts: [{ hostPath: '/run/udev', containerPath: '/run/udev', readOnly: true }],
        },
      ],
      BROKER,
    );
    assert.deepEqual(res.envs, {
      EDGEBRIDGE_BROKER_URL: BROKER,
      EDGEBRIDGE_DEVICES: 'usb-0123456789',
      EDGEBRIDGE_DEVICE: 'usb-0123456789',
      EDGEBRIDGE_DEVICE_NAMESPACE: 'ns',
      EDGEBRIDGE_TOPIC_PREFIX: 'edgebridge/v1/ns/usb-0123456789',
      USB_VENDOR_ID: '0x1234',
    });
    assert.deepEqual(res.devices, [
      {
        hostPath: '/dev/bus/usb/001/002',
        containerPath: '/dev/bus/usb/001/002',
        permissions: 'rw',
      },
    ]);
    assert.deepEqual(res.mounts, [
      { hostPath: '/run/udev', containerPath: '/run/udev', readOnly: true },
    ]);
  });

  it('numbers the variables of several devices, and counts a device given twice once', () => {
    const cam = (name: string) => ({
      namespace: 'ns',
      name,
      discovery: 'cams',
      capacity: 2,
      properties: { URL: `rtsp://${name}` },
    });
    const res = containerResponse([cam('cam-a'), cam('cam-b'), cam('cam-a')], BROKER);
    assert.equal(res.envs.EDGEBRIDGE_DEVICES, 'cam-a,cam-b');
    assert.equal(res.envs.URL_0, 'rtsp://cam-a');
    assert.equal(res.envs.URL_1, 'rtsp://cam-b');
    assert.equal(res.envs.EDGEBRIDGE_TOPIC_PREFIX_1, 'edgebridge/v1/ns/cam-b');
    assert.equal(res.envs.URL, undefined);
  });
});
