import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { DiscoveredDevice } from '../../discovery-handlers/handler.ts';
import {
  runWithUsbDevices,
  startUsbHotplug,
  type UsbDevice,
  type UsbHotplug,
} from '../harness/umockdev.ts';

const fixture = path.join(import.meta.dirname, 'fixtures', 'usb-handler.ts');
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

// Kinds of device found on edge nodes, as their drivers lay them out in sysfs.
const hub: UsbDevice = {
  vendorId: 0x05e3,
  productId: 0x0608,
  port: '1',
  deviceClass: 0x09,
  product: 'USB2.0 Hub',
  interfaces: [{ interfaceClass: 0x09, driver: 'hub' }],
};
const webcam: UsbDevice = {
  vendorId: 0x046d,
  productId: 0x0825,
  port: '1.1',
  deviceClass: 0xef,
  manufacturer: 'Logitech',
  product: 'Webcam C270',
  serial: 'CAM-1',
  interfaces: [
    { interfaceClass: 0x0e, driver: 'uvcvideo', nodes: ['video4linux/video0'] },
    { interfaceClass: 0x01, driver: 'snd-usb-audio' },
  ],
};
// A CH340 USB-serial adapter: no serial number, a vendor-specific interface, a ttyUSB.
const serialAdapter: UsbDevice = {
  vendorId: 0x1a86,
  productId: 0x7523,
  port: '1.2',
  deviceClass: 0xff,
  product: 'USB Serial',
  interfaces: [{ interfaceClass: 0xff, driver: 'ch341', nodes: ['ttyUSB0/tty/ttyUSB0'] }],
};
// An Arduino on its own port: a CDC ACM modem and a serial number.
const arduino: UsbDevice = {
  vendorId: 0x2341,
  productId: 0x0043,
  port: '2',
  deviceClass: 0x02,
  manufacturer: 'Arduino (www.arduino.cc)',
  serial: '75735353038351F0D1C0',
  interfaces: [{ interfaceClass: 0x02, driver: 'cdc_acm', nodes: ['tty/ttyACM0'] }],
};
const all = [hub, webcam, serialAdapter, arduino];

interface Line {
  event: string;
  index?: number;
  devices?: DiscoveredDevice[];
  id?: string;
  state?: string;
  body?: { event: string; properties: Record<string, string> };
}
const parse = (text: string): Line[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
const ids = (devices: DiscoveredDevice[] | undefined): string[] =>
  (devices ?? []).map((d) => d.id).sort();

/** The first list the handler reports for each of `details`, all in one umockdev test bed. */
async function firstLists(devices: UsbDevice[], details: unknown[]): Promise<Line[]> {
  const r = await runWithUsbDevices({
    devices,
    command: process.execPath,
    args: [fixture, 'first', ...details.map((d) => JSON.stringify(d))],
  });
  assert.equal(r.code, 0, `usb handler failed: ${r.stderr}`);
  return parse(r.stdout).filter((l) => l.event === 'list');
}

describe('usb handler under umockdev', () => {
  const testbeds: UsbHotplug[] = [];
  after(async () => {
    await Promise.all(testbeds.map((t) => t.stop()));
  });

  it('`edgebridge scan usb` lists a webcam, a USB-serial adapter and a hub with two devices behind it, with their nodes', async () => {
    const r = await runWithUsbDevices({
      devices: all,
      command: process.execPath,
      args: [CLI, 'scan', 'usb', '-o', 'json'],
    });
    assert.equal(r.code, 0, `scan failed: ${r.stderr}`);
    const { items } = JSON.parse(r.stdout) as { items: DiscoveredDevice[] };
    const byId = new Map(items.map((d) => [d.id, d]));
    // Serial number where there is one, else the port path.
    assert.deepEqual([...byId.keys()].sort(), ['1-1', '1-1.2', '75735353038351F0D1C0', 'CAM-1']);
    assert.deepEqual(byId.get('CAM-1'), {
      id: 'CAM-1',
      properties: {
        USB_VENDOR_ID: '046d',
        USB_PRODUCT_ID: '0825',
        USB_DEVICE_CLASS: 'ef',
        USB_MANUFACTURER: 'Logitech',
        USB_PRODUCT: 'Webcam C270',
        USB_SERIAL: 'CAM-1',
        USB_BUS: '001',
        USB_ADDRESS: '003',
        USB_PORT_PATH: '1-1.1',
        USB_DEVNODE: '/dev/bus/usb/001/003',
        USB_DEVICE_NODES: '/dev/video0',
      },
      labels: { 'usb.edgebridge.io/vendor': '046d', 'usb.edgebridge.io/product': '0825' },
      deviceNodes: [{ hostPath: '/dev/bus/usb/001/003' }, { hostPath: '/dev/video0' }],
      mounts: [],
    });
    const adapter = byId.get('1-1.2');
    assert.equal(adapter?.properties.USB_PORT_PATH, '1-1.2');
    assert.equal(adapter.properties.USB_SERIAL, undefined);
    assert.deepEqual(
      adapter.deviceNodes?.map((n) => n.hostPath),
      ['/dev/bus/usb/001/004', '/dev/ttyUSB0'],
    );
    assert.equal(byId.get('75735353038351F0D1C0')?.properties.USB_DEVICE_NODES, '/dev/ttyACM0');
    assert.equal(byId.get('1-1')?.properties.USB_DEVICE_CLASS, '09');

    const table = await runWithUsbDevices({
      devices: all,
      command: process.execPath,
      args: [CLI, 'scan', 'usb', '--details', '{"vendorIds":["046D"]}'],
    });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+PROPERTIES\s+LABELS\s+DEVICENODES$/m);
    assert.match(table.stdout, /^CAM-1\s.*\/dev\/video0$/m);
    assert.equal(table.stdout.trim().split('\n').length, 2);
  });

  it('`edgebridge scan usb` refuses an unsupported udev key by name (exit 2)', async () => {
    const r = await runWithUsbDevices({
      devices: [],
      command: process.execPath,
      args: [
        CLI,
        'scan',
        'usb',
        '--details',
        '{"udevRules":["SUBSYSTEM==\\"usb\\", TAG+=\\"uaccess\\""]}',
      ],
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /details\.udevRules\[0\]: unsupported key TAG/);
  });

  it('keeps the devices each filter kind selects', async () => {
    const rule = (...rules: string[]): { udevRules: string[] } => ({ udevRules: rules });
    const cases: [unknown, string[]][] = [
      [{}, ['1-1', '1-1.2', '75735353038351F0D1C0', 'CAM-1']],
      [{ vendorIds: ['046d', '0x2341'] }, ['75735353038351F0D1C0', 'CAM-1']],
      [{ productIds: ['7523'] }, ['1-1.2']],
      [{ vendorIds: ['046d'], productIds: ['7523'] }, []],
      // Class of the device (09 hub) or of an interface (0e video, 02 CDC).
      [{ deviceClasses: ['0e', '09'] }, ['1-1', 'CAM-1']],
      [{ deviceClasses: ['2'] }, ['75735353038351F0D1C0']],
      [{ serialNumbers: ['CAM-1', 'nope'] }, ['CAM-1']],
      [{ manufacturers: ['Arduino*'] }, ['75735353038351F0D1C0']],
      [{ products: ['*Serial*', 'Webcam C27?'] }, ['1-1.2', 'CAM-1']],
      [{ portPaths: ['1-1.2', '1-2'] }, ['1-1.2', '75735353038351F0D1C0']],
      [rule('SUBSYSTEM=="video4linux"'), ['CAM-1']],
      [rule('KERNEL=="ttyUSB[0-9]*"'), ['1-1.2']],
      [rule('SUBSYSTEM=="tty", KERNEL=="ttyUSB*|ttyACM*"'), ['1-1.2', '75735353038351F0D1C0']],
      [rule('SUBSYSTEM=="tty", ATTRS{idVendor}=="2341"'), ['75735353038351F0D1C0']],
      [rule('ATTRS{idVendor}=="05e3"'), ['1-1', '1-1.2', 'CAM-1']],
      [rule('SUBSYSTEM=="usb", ATTR{idVendor}=="05e3"'), ['1-1']],
      [
        rule('SUBSYSTEM=="usb", ATTR{idVendor}!="05e3", ATTR{serial}=="*"'),
        ['75735353038351F0D1C0', 'CAM-1'],
      ],
      [rule('ENV{ID_VENDOR_ID}=="1a86"'), ['1-1.2']],
      [rule('DRIVERS=="uvcvideo"', 'DRIVER=="ch341"'), ['1-1.2', 'CAM-1']],
      [{ ...rule('SUBSYSTEM=="tty"'), vendorIds: ['2341'] }, ['75735353038351F0D1C0']],
    ];
    const lists = await firstLists(
      all,
      cases.map(([d]) => d),
    );
    assert.equal(lists.length, cases.length);
    for (const [i, [details, expected]] of cases.entries())
      assert.deepEqual(ids(lists[i]?.devices), expected, `details ${JSON.stringify(details)}`);
  });

  it('leaves out bad strings and skips a device with garbage ids, with one log line each, and lists the rest', async () => {
    const r = await runWithUsbDevices({
      devices: [
        arduino,
        {
          vendorId: 0x0403,
          productId: 0x6001,
          port: '3',
          manufacturer: 'x'.repeat(5000),
          // Not UTF-8, and a control character in the serial.
          rawAttributes: { product: 'fffe41c3', serial: '41014200' },
        },
        { vendorId: 0x1234, productId: 0x5678, port: '4', rawAttributes: { idVendor: '7a7a' } },
      ],
      command: process.execPath,
      args: [fixture, 'first', '{}'],
    });
    assert.equal(r.code, 0, r.stderr);
    const [list] = parse(r.stdout);
    assert.deepEqual(ids(list?.devices), ['1-3', '75735353038351F0D1C0']);
    const ftdi = list?.devices?.find((d) => d.id === '1-3');
    assert.equal(ftdi?.properties.USB_VENDOR_ID, '0403');
    for (const key of ['USB_MANUFACTURER', 'USB_PRODUCT', 'USB_SERIAL'])
      assert.equal(ftdi?.properties[key], undefined, key);
    const warnings = parse(r.stderr).filter((l) => (l as { level?: number }).level === 40);
    const messages = warnings.map(
      (w) => `${(w as { portPath?: string }).portPath} ${(w as { msg?: string }).msg}`,
    );
    assert.deepEqual(messages.sort(), [
      '1-3 USB device has bad fields; left out',
      '1-4 USB device unreadable; skipped',
    ]);
  });

  it('reports attach and detach as they happen, with events and state', async () => {
    const tb = await startUsbHotplug({
      devices: [hub],
      command: process.execPath,
      args: [fixture, 'watch', JSON.stringify({ udevRules: ['SUBSYSTEM=="video4linux"'] })],
    });
    testbeds.push(tb);
    const lists = (): Line[] => parse(tb.lines.join('\n')).filter((l) => l.event === 'list');
    await tb.waitForLine('the first list', (l) => l.includes('"list"'), 15000);
    assert.deepEqual(ids(lists()[0]?.devices), []);

    const added = await tb.add(webcam);
    await tb.waitForLine(
      'a list with the webcam',
      (l) => l.includes('"list"') && l.includes('CAM-1'),
    );
    const attach = parse(tb.lines.join('\n')).find((l) => l.event === 'event');
    assert.equal(attach?.id, 'CAM-1');
    assert.equal(attach.body?.event, 'attach');
    assert.equal(attach.body.properties.USB_DEVICE_NODES, '/dev/video0');
    assert.ok(tb.lines.includes(JSON.stringify({ event: 'state', id: 'CAM-1', state: 'online' })));

    await tb.remove(added);
    await tb.waitForLine('the detach event', (l) => l.includes('"detach"'));
    await tb.waitForLine('offline', (l) => l.includes('"offline"'));
    const last = await tb.waitForLine(
      'an empty list',
      (l) => l.includes('"devices":[]') && lists().length >= 3,
    );
    assert.ok(last);
    assert.deepEqual(
      lists().map((l) => ids(l.devices)),
      [[], ['CAM-1'], []],
    );
    assert.equal(await tb.stop(), 0);
  });
});
