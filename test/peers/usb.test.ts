import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { runWithUsbDevices, startUsbHotplug, type UsbHotplug } from '../harness/umockdev.ts';

const fixture = path.join(import.meta.dirname, 'fixtures', 'usb-devices.ts');

interface Seen {
  event: string;
  busNumber?: number;
  deviceAddress?: number;
  vendorId?: number;
  productId?: number;
  deviceClass?: number;
  sysfs?: Record<string, string>;
}
const parse = (text: string): Seen[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Seen);

describe('umockdev USB peer', () => {
  const testbeds: UsbHotplug[] = [];
  after(async () => {
    await Promise.all(testbeds.map((t) => t.stop()));
  });

  it('shows faked devices, and only those, to the usb package', async () => {
    const r = await runWithUsbDevices({
      devices: [
        { vendorId: 0x1a86, productId: 0x7523, serial: 'CH340-1' },
        { vendorId: 0x0483, productId: 0x5740, deviceClass: 0x02 },
      ],
      command: process.execPath,
      args: [fixture, 'list'],
      timeoutMs: 20000,
    });
    assert.equal(r.code, 0, `usb lister failed: ${r.stderr}`);
    const seen = parse(r.stdout).sort((a, b) => (a.deviceAddress ?? 0) - (b.deviceAddress ?? 0));
    assert.deepEqual(seen, [
      {
        event: 'list',
        busNumber: 1,
        deviceAddress: 2,
        vendorId: 0x1a86,
        productId: 0x7523,
        deviceClass: 0xff,
        sysfs: { serial: 'CH340-1' },
      },
      {
        event: 'list',
        busNumber: 1,
        deviceAddress: 3,
        vendorId: 0x0483,
        productId: 0x5740,
        deviceClass: 0x02,
        sysfs: {},
      },
    ]);
  });

  it('reports a device hot-plugged while the program runs, and its removal', async () => {
    const tb = await startUsbHotplug({
      devices: [{ vendorId: 0x1a86, productId: 0x7523 }],
      command: process.execPath,
      args: [fixture, 'watch'],
    });
    testbeds.push(tb);
    const isEvent = (event: string, vendorId: number) => (l: string) => {
      const s = l.startsWith('{') ? (JSON.parse(l) as Seen) : undefined;
      return s?.event === event && s.vendorId === vendorId;
    };
    await tb.waitForLine('the watcher to be ready', (l) => l.includes('"ready"'), 15000);
    assert.ok(tb.lines.some(isEvent('list', 0x1a86)), 'the initial device was not listed');
    assert.ok(
      !tb.lines.some(isEvent('list', 0x2341)),
      'the hot-plug device was there before it was added',
    );

    const added = await tb.add({ vendorId: 0x2341, productId: 0x0043 });
    const attach = JSON.parse(
      await tb.waitForLine('the attach event', isEvent('attach', 0x2341)),
    ) as Seen;
    assert.deepEqual(attach, {
      event: 'attach',
      busNumber: 1,
      deviceAddress: added.devnum,
      vendorId: 0x2341,
      productId: 0x0043,
      deviceClass: 0xff,
    });

    await tb.remove(added);
    await tb.waitForLine('the detach event', isEvent('detach', 0x2341));
    assert.equal(await tb.stop(), 0);
  });
});
