import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cdiSpecFile, cdiSpecFor, deviceEnv } from '../../../src/dra/cdi-spec.ts';
import { BadKubeletRequestError } from '../../../src/dra/errors.ts';
import type { NodeDevice } from '../../../src/dra/node-device.ts';

const UID = '3f1c2a4e-1b2c-4d5e-8f90-123456789abc';

function usb(properties: Record<string, string>, node: NodeDevice['node']): NodeDevice {
  return {
    namespace: 'lab',
    name: 'sticks-0a1b2c3d4e',
    spec: { discovery: 'sticks', handler: 'usb', shared: false, id: 'SER1', properties },
    node,
  };
}

describe('CDI specs for prepared claims', () => {
  it('gives a device its properties, the broker URL and its topic prefix as env', () => {
    const env = deviceEnv(usb({ USB_VENDOR_ID: '1d6b', USB_PRODUCT_ID: '0002' }, {}), {
      brokerUrl: 'mqtt://10.0.0.5:1883',
    });
    assert.deepEqual(env, [
      'USB_PRODUCT_ID=0002',
      'USB_VENDOR_ID=1d6b',
      'EDGEBRIDGE_DEVICE=sticks-0a1b2c3d4e',
      'EDGEBRIDGE_DEVICE_NAMESPACE=lab',
      'EDGEBRIDGE_TOPIC_PREFIX=edgebridge/v1/lab/sticks-0a1b2c3d4e',
      'EDGEBRIDGE_BROKER_URL=mqtt://10.0.0.5:1883',
    ]);
  });

  it('leaves out properties that cannot be env variables or would override edgebridge’s own', () => {
    const env = deviceEnv(
      usb(
        {
          'NOT-A-NAME': 'x',
          NUL: 'a\u0000b',
          EDGEBRIDGE_TOPIC_PREFIX: 'edgebridge/v1/other/device',
          HUGE: 'h'.repeat(40 * 1024),
          OK: 'fine',
        },
        {},
      ),
      {},
    );
    assert.deepEqual(
      env.filter((e) => !e.startsWith('EDGEBRIDGE_')),
      ['OK=fine'],
    );
    assert.ok(env.includes('EDGEBRIDGE_TOPIC_PREFIX=edgebridge/v1/lab/sticks-0a1b2c3d4e'));
  });

  it('lists device nodes and mounts with absolute, normalised paths only', () => {
    const spec = cdiSpecFor(
      UID,
      [
        {
          draName: 'sticks-1',
          device: usb(
            {},
            {
              deviceNodes: [
                { hostPath: '/dev/bus/usb/001/002' },
                { hostPath: '/dev/ttyUSB0', containerPath: '/dev/serial0', permissions: 'rw' },
                { hostPath: '../../etc/shadow' },
                { hostPath: '/dev/../etc/shadow' },
              ],
              mounts: [{ hostPath: '/run/udev', containerPath: '/run/udev', readOnly: true }],
            },
          ),
        },
      ],
      {},
    );
    assert.equal(spec.cdiVersion, '0.6.0');
    assert.equal(spec.kind, 'edgebridge.io/device');
    const [d] = spec.devices;
    assert.equal(d?.name, `${UID}-sticks-1`);
    assert.deepEqual(d?.containerEdits.deviceNodes, [
      { path: '/dev/bus/usb/001/002', hostPath: '/dev/bus/usb/001/002' },
      { path: '/dev/serial0', hostPath: '/dev/ttyUSB0', permissions: 'rw' },
    ]);
    assert.deepEqual(d?.containerEdits.mounts, [
      { hostPath: '/run/udev', containerPath: '/run/udev', options: ['bind', 'ro'] },
    ]);
  });

  it('refuses a claim uid that could leave the CDI directory', () => {
    assert.throws(() => cdiSpecFile('/var/run/cdi', '../../etc/passwd'), BadKubeletRequestError);
    assert.throws(() => cdiSpecFile('/var/run/cdi', ''), BadKubeletRequestError);
    assert.equal(cdiSpecFile('/var/run/cdi', UID), `/var/run/cdi/edgebridge.io-device_${UID}.json`);
  });
});
