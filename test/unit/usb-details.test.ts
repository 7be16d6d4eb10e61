import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidDetailsError } from '../../discovery-handlers/handler.ts';
import { parseUsbDetails } from '../../discovery-handlers/usb/details.ts';
import { deviceMatches } from '../../discovery-handlers/usb/filter.ts';
import { toDiscoveredList } from '../../discovery-handlers/usb/to-discovered.ts';
import type { RuleNode } from '../../discovery-handlers/usb/udev-rules.ts';
import type { UsbDeviceInfo } from '../../discovery-handlers/usb/usb-device.ts';

const node = (kernel: string, subsystem: string, attrs: Record<string, string> = {}): RuleNode => ({
  kernel,
  subsystem,
  devpath: `/devices/${kernel}`,
  env: {},
  attr: (name) => attrs[name],
});

const device = (d: Partial<UsbDeviceInfo>): UsbDeviceInfo => {
  const self = node(d.portPath ?? '1-1', 'usb', { idVendor: d.vendorId ?? '1a86' });
  return {
    portPath: '1-1',
    busnum: 1,
    devnum: 2,
    vendorId: '1a86',
    productId: '7523',
    deviceClass: '00',
    interfaceClasses: ['ff'],
    devnode: '/dev/bus/usb/001/002',
    nodes: [],
    chain: [self],
    descendants: [[node('ttyUSB0', 'tty'), self]],
    ...d,
  };
};

describe('usb details', () => {
  it('accepts no details (every device) and normalises hex ids', () => {
    assert.deepEqual(parseUsbDetails(undefined), { udevRules: [] });
    const f = parseUsbDetails({ vendorIds: ['0x1A86', '46d'], deviceClasses: ['e'] });
    assert.deepEqual([...(f.vendorIds ?? [])], ['1a86', '046d']);
    assert.deepEqual([...(f.deviceClasses ?? [])], ['0e']);
  });

  const bad: [unknown, RegExp][] = [
    [{ vendorIds: ['12345'] }, /details\.vendorIds\[0\]: .*hex number of at most 4 digits/],
    [{ productIds: ['xyz'] }, /details\.productIds\[0\]/],
    [{ deviceClasses: ['100'] }, /details\.deviceClasses\[0\]/],
    [{ vendorIds: [] }, /details\.vendorIds/],
    [{ portPaths: ['1-1/../x'] }, /details\.portPaths\[0\]: .*port path such as 1-1\.2/],
    [{ serialNumbers: ['x'.repeat(257)] }, /details\.serialNumbers\[0\]/],
    [{ udevRules: 'SUBSYSTEM=="usb"' }, /details\.udevRules: must be an? array/],
    [
      { udevRules: ['SUBSYSTEM=="usb"', 'MODE="0666"'] },
      /details\.udevRules\[1\]: unsupported key MODE/,
    ],
    [{ udevRules: ['GROUP="dialout"'] }, /details\.udevRules\[0\]: unsupported key GROUP/],
    [{ manufacturers: ['[z-a]'] }, /details\.manufacturers: bad pattern/],
    [{ colour: 'red' }, /details\.colour/],
  ];
  for (const [details, message] of bad)
    it(`refuses ${JSON.stringify(details).slice(0, 60)}`, () => {
      assert.throws(
        () => parseUsbDetails(details),
        (err: unknown) => err instanceof InvalidDetailsError && message.test(err.message),
      );
    });
});

describe('usb filter', () => {
  const adapter = device({});
  const cam = device({
    portPath: '1-2',
    vendorId: '046d',
    productId: '0825',
    deviceClass: 'ef',
    interfaceClasses: ['0e', '01'],
    manufacturer: 'Logitech',
    product: 'Webcam C270',
    serial: 'CAM-1',
  });
  const cases: [unknown, UsbDeviceInfo, boolean][] = [
    [{}, adapter, true],
    [{ vendorIds: ['046d'] }, adapter, false],
    [{ vendorIds: ['046d'] }, cam, true],
    [{ productIds: ['7523'] }, adapter, true],
    [{ deviceClasses: ['0e'] }, cam, true],
    [{ deviceClasses: ['ef'] }, cam, true],
    [{ deviceClasses: ['0e'] }, adapter, false],
    [{ serialNumbers: ['CAM-1'] }, cam, true],
    // A device without a serial (or manufacturer) never matches a filter on it.
    [{ serialNumbers: ['*'] }, adapter, false],
    [{ manufacturers: ['*'] }, adapter, false],
    [{ manufacturers: ['logi*'] }, cam, false],
    [{ manufacturers: ['Logi*'] }, cam, true],
    [{ products: ['*C2[0-9]0'] }, cam, true],
    [{ portPaths: ['1-2'] }, cam, true],
    [{ portPaths: ['1-2'] }, adapter, false],
    [{ udevRules: ['SUBSYSTEM=="tty"'] }, adapter, true],
    [{ udevRules: ['SUBSYSTEM=="tty"', 'ATTR{idVendor}=="046d"'] }, cam, true],
    // Kinds are ANDed.
    [{ udevRules: ['SUBSYSTEM=="tty"'], vendorIds: ['046d'] }, adapter, false],
  ];
  for (const [details, d, expected] of cases)
    it(`${JSON.stringify(details)} ${expected ? 'keeps' : 'drops'} ${d.portPath}`, () => {
      assert.equal(deviceMatches(parseUsbDetails(details), d), expected);
    });
});

describe('usb device ids', () => {
  it('uses the serial number, else the port path, and tells shared serials apart by port', () => {
    const list = toDiscoveredList([
      device({ portPath: '1-1', serial: 'A' }),
      device({ portPath: '1-2' }),
      device({ portPath: '1-3', serial: '0001' }),
      device({ portPath: '1-4', serial: '0001' }),
    ]);
    assert.deepEqual(
      list.map((d) => d.id),
      ['A', '1-2', '0001@1-3', '0001@1-4'],
    );
    assert.deepEqual(list[1]?.labels, {
      'usb.edgebridge.io/vendor': '1a86',
      'usb.edgebridge.io/product': '7523',
    });
  });
});
