import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  listPortPaths,
  MAX_DEVICES,
  readSysfsFile,
  readUsbDevice,
  sysfsRoot,
} from '../../discovery-handlers/usb/sysfs.ts';

// A sysfs tree in a temporary directory, laid out as the kernel does it.
let root: string;
const USB1 = 'devices/pci0000:00/0000:00:14.0/usb1';

function addDevice(port: string, attrs: Record<string, string | Buffer>, below = ''): string {
  const dir = path.join(root, USB1, below, `1-${port}`);
  mkdirSync(dir, { recursive: true });
  for (const [k, v] of Object.entries(attrs)) writeFileSync(path.join(dir, k), v);
  writeFileSync(path.join(dir, 'uevent'), 'DEVTYPE=usb_device\n');
  symlinkSync(
    path.relative(path.join(root, 'bus/usb/devices'), dir),
    path.join(root, 'bus/usb/devices', `1-${port}`),
  );
  return dir;
}
const ids = (vid: string, devnum: number) => ({
  idVendor: `${vid}\n`,
  idProduct: '0001\n',
  busnum: '1\n',
  devnum: `${devnum}\n`,
  bDeviceClass: '00\n',
});

describe('usb sysfs reading', () => {
  before(() => {
    root = mkdtempSync(path.join(tmpdir(), 'usb-sysfs-'));
    mkdirSync(path.join(root, 'bus/usb/devices'), { recursive: true });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads the umockdev test bed when UMOCKDEV_DIR is set, else /sys', () => {
    assert.equal(sysfsRoot({}), '/sys');
    assert.equal(sysfsRoot({ UMOCKDEV_DIR: '/tmp/umockdev.X' }), '/tmp/umockdev.X/sys');
    assert.equal(sysfsRoot({ UMOCKDEV_DIR: 'relative' }), '/sys');
  });

  it('refuses an attribute longer than the cap instead of reading it all', () => {
    const file = path.join(root, 'big');
    writeFileSync(file, Buffer.alloc(1024 * 1024, 0x41));
    assert.throws(() => readSysfsFile(file), /longer than 4096 bytes/);
    assert.equal(readSysfsFile(path.join(root, 'absent')), undefined);
  });

  it('keeps a device with absurd strings, leaving them out with a problem each', () => {
    addDevice('1', {
      ...ids('abcd', 2),
      manufacturer: Buffer.alloc(100_000, 0x41),
      product: Buffer.from([0xc3, 0x28, 0x0a]), // not UTF-8
      serial: 'A\u0007B\n',
    });
    const r = readUsbDevice(root, '1-1');
    assert.ok(r.ok);
    assert.equal(r.device.vendorId, 'abcd');
    assert.equal(r.device.manufacturer, undefined);
    assert.equal(r.device.product, undefined);
    assert.equal(r.device.serial, undefined);
    assert.deepEqual(r.problems, [
      'manufacturer: longer than 4096 bytes',
      'product: not UTF-8',
      'serial: control or invalid characters',
    ]);
  });

  it('skips a device whose ids are missing or not hex', () => {
    addDevice('2', { ...ids('zz12', 3) });
    addDevice('3', { idProduct: '0001\n', busnum: '1\n', devnum: '4\n' });
    assert.deepEqual(readUsbDevice(root, '1-2'), { ok: false, problems: ['idVendor: not valid'] });
    assert.deepEqual(readUsbDevice(root, '1-3'), {
      ok: false,
      problems: ['idVendor: missing', 'bDeviceClass: missing'],
    });
    assert.deepEqual(readUsbDevice(root, '1-9'), { ok: false, problems: ['gone from sysfs'] });
    assert.deepEqual(readUsbDevice(root, '../../etc'), {
      ok: false,
      problems: ['not a port path'],
    });
  });

  it("finds interfaces' nodes, not those of devices behind it, and at most 64 nodes", () => {
    const hub = addDevice('4', { ...ids('05e3', 5), bDeviceClass: '09\n' });
    const behind = addDevice('4.1', ids('1a86', 6), '1-4');
    const tty = path.join(behind, '1-4.1:1.0/ttyUSB0/tty/ttyUSB0');
    mkdirSync(tty, { recursive: true });
    writeFileSync(path.join(behind, '1-4.1:1.0/uevent'), 'DEVTYPE=usb_interface\n');
    writeFileSync(path.join(behind, '1-4.1:1.0/bInterfaceClass'), 'ff\n');
    writeFileSync(path.join(tty, 'uevent'), 'MAJOR=188\nMINOR=0\nDEVNAME=ttyUSB0\n');
    const r = readUsbDevice(root, '1-4');
    assert.ok(r.ok);
    assert.deepEqual(r.device.nodes, []);
    const d = readUsbDevice(root, '1-4.1');
    assert.ok(d.ok);
    assert.deepEqual(d.device.nodes, ['/dev/ttyUSB0']);
    assert.deepEqual(d.device.interfaceClasses, ['ff']);
    assert.deepEqual(
      d.device.chain.map((n) => n.kernel),
      ['1-4.1', '1-4', 'usb1', '0000:00:14.0', 'pci0000:00'],
    );
    // A device with hundreds of nodes (or a hostile tree): bounded.
    for (let i = 0; i < 200; i += 1) {
      const n = path.join(hub, `1-4:1.${i}`);
      mkdirSync(n);
      writeFileSync(path.join(n, 'uevent'), `DEVNAME=hidraw${i}\n`);
    }
    const big = readUsbDevice(root, '1-4');
    assert.ok(big.ok);
    assert.equal(big.device.nodes.length, 64);
  });

  it('refuses device node names that leave /dev', () => {
    const dir = addDevice('5', ids('1234', 7));
    mkdirSync(path.join(dir, '1-5:1.0'));
    writeFileSync(path.join(dir, '1-5:1.0/uevent'), 'DEVNAME=../etc/shadow\n');
    const r = readUsbDevice(root, '1-5');
    assert.ok(r.ok);
    assert.deepEqual(r.device.nodes, []);
    assert.deepEqual(r.problems, ['1-5:1.0: bad DEVNAME']);
  });

  it('lists at most MAX_DEVICES port paths, leaving out interfaces and root hubs', () => {
    const dir = path.join(root, 'bus/usb/devices');
    symlinkSync('../../../devices/x', path.join(dir, 'usb1'));
    symlinkSync('../../../devices/x', path.join(dir, '1-1:1.0'));
    for (let i = 0; i < MAX_DEVICES + 500; i += 1)
      symlinkSync(
        '../../../devices/x',
        path.join(dir, `2-${Math.floor(i / 100) + 1}.${(i % 100) + 1}`),
      );
    const paths = listPortPaths(root);
    assert.equal(paths.length, MAX_DEVICES);
    assert.ok(!paths.includes('usb1') && !paths.includes('1-1:1.0'));
  });
});
