import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob } from '../../discovery-handlers/usb/glob.ts';
import {
  parseUdevRule,
  ruleMatches,
  UdevRuleError,
  type RuleNode,
} from '../../discovery-handlers/usb/udev-rules.ts';

const node = (n: Partial<RuleNode> & { attrs?: Record<string, string> }): RuleNode => ({
  kernel: n.kernel ?? 'x',
  devpath: n.devpath ?? '/devices/x',
  ...(n.subsystem !== undefined ? { subsystem: n.subsystem } : {}),
  ...(n.driver !== undefined ? { driver: n.driver } : {}),
  env: n.env ?? {},
  attr: (name) => n.attrs?.[name],
});

// A webcam: video0 below the interface below the USB device below the hub.
const hub = node({
  kernel: '1-1',
  subsystem: 'usb',
  attrs: { idVendor: '05e3', idProduct: '0608' },
});
const cam = node({
  kernel: '1-1.2',
  subsystem: 'usb',
  driver: 'usb',
  devpath: '/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.2',
  attrs: { idVendor: '046d', idProduct: '0825', serial: 'CAM-1', product: 'Webcam C270' },
  env: { DEVTYPE: 'usb_device', ID_VENDOR_ID: '046d' },
});
const iface = node({
  kernel: '1-1.2:1.0',
  subsystem: 'usb',
  driver: 'uvcvideo',
  attrs: { bInterfaceClass: '0e' },
});
const video = node({
  kernel: 'video0',
  subsystem: 'video4linux',
  env: { DEVNAME: 'video0' },
  attrs: { name: 'C270' },
});
const camChain = [cam, hub];
const videoChain = [video, iface, cam, hub];

const matches = (rule: string, chain: RuleNode[]): boolean =>
  ruleMatches(parseUdevRule(rule), chain);

describe('udev glob patterns', () => {
  const cases: [string, string, boolean][] = [
    ['video0', 'video0', true],
    ['video0', 'video01', false],
    ['video*', 'video12', true],
    ['video*', 'vide', false],
    ['video?', 'video1', true],
    ['video?', 'video12', false],
    ['video[0-9]', 'video7', true],
    ['video[0-9]', 'videoa', false],
    ['video[!0-9]', 'videoa', true],
    ['video[!0-9]', 'video1', false],
    ['tty[A-Z][A-Z][A-Z]*', 'ttyACM0', true],
    ['ttyUSB*|ttyACM*', 'ttyACM3', true],
    ['ttyUSB*|ttyACM*', 'ttyS0', false],
    ['a.b', 'aXb', false],
    ['a(b)+', 'a(b)+', true],
    ['[', '[', true],
    ['[]]', ']', true],
    ['', '', true],
    ['*', '', true],
  ];
  for (const [pattern, value, expected] of cases)
    it(`'${pattern}' ${expected ? 'matches' : 'does not match'} '${value}'`, () => {
      assert.equal(compileGlob(pattern)(value), expected);
    });
});

describe('udev rules: parsing', () => {
  it('reads match pairs with == and !=, spaces and line continuations', () => {
    const rule = parseUdevRule(
      'SUBSYSTEM=="usb",  ATTRS{idVendor}!="1d6b", \\\n ENV{ID_SERIAL}=="*"',
    );
    assert.deepEqual(
      rule.matches.map((m) => [m.key, m.name, m.negate]),
      [
        ['SUBSYSTEM', undefined, false],
        ['ATTRS', 'idVendor', true],
        ['ENV', 'ID_SERIAL', false],
      ],
    );
  });

  const bad: [string, RegExp][] = [
    ['TAG=="uaccess"', /unsupported key TAG/],
    ['SUBSYSTEM=="usb", RUN+="/bin/sh -c reboot"', /unsupported key RUN/],
    ['SUBSYSTEM=="usb", PROGRAM=="/bin/true"', /unsupported key PROGRAM/],
    ['SYMLINK+="cam"', /unsupported key SYMLINK/],
    ['KERNEL="video0"', /only == and != match/],
    ['ATTR{idVendor}:="046d"', /only == and != match/],
    ['ENV{ID_X}+="1"', /only == and != match/],
    ['ATTRS=="046d"', /ATTRS needs a name/],
    ['KERNEL{x}=="a"', /KERNEL takes no \{name\}/],
    ['ATTR{../../../etc/passwd}=="x"', /'\.\.' is not allowed/],
    ['SUBSYSTEM==usb', /expected KEY=="value"/],
    ['SUBSYSTEM=="usb" KERNEL=="x"', /expected KEY=="value"/],
    ['', /empty rule/],
    ['SUBSYSTEM=="usb"\nKERNEL=="x"', /one rule per entry/],
    ['KERNEL=="video[z-a]"', /bad pattern/],
  ];
  for (const [text, message] of bad)
    it(`refuses ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseUdevRule(text),
        (err: unknown) => {
          assert.ok(err instanceof UdevRuleError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
});

describe('udev rules: matching a node and its parents', () => {
  const cases: [string, RuleNode[], boolean][] = [
    ['SUBSYSTEM=="usb"', camChain, true],
    ['SUBSYSTEM=="video4linux"', camChain, false],
    ['SUBSYSTEM=="video4linux"', videoChain, true],
    ['KERNEL=="video[0-9]*"', videoChain, true],
    ['KERNEL=="ttyACM*"', videoChain, false],
    ['ATTRS{idVendor}=="046d"', videoChain, true],
    ['ATTRS{idVendor}=="046d", ATTRS{idProduct}=="0825"', videoChain, true],
    // One parent must fit every S-key at once: the hub's product with the camera's vendor is no match.
    ['ATTRS{idVendor}=="046d", ATTRS{idProduct}=="0608"', videoChain, false],
    ['ATTRS{idVendor}=="05e3"', camChain, true],
    ['ATTR{idVendor}=="05e3"', camChain, false],
    ['ATTR{idVendor}=="046d"', camChain, true],
    ['ATTR{idVendor}!="046d"', camChain, false],
    ['ATTR{idVendor}!="1d6b"', camChain, true],
    ['ATTR{nothere}!="x"', camChain, true],
    ['ATTR{nothere}=="*"', camChain, false],
    ['ATTRS{serial}=="CAM-*"', videoChain, true],
    ['ATTRS{product}=="*C270*"', camChain, true],
    ['ENV{ID_VENDOR_ID}=="046d"', camChain, true],
    ['ENV{ID_VENDOR_ID}=="046d"', videoChain, false],
    ['ENV{DEVTYPE}=="usb_device", SUBSYSTEM=="usb"', camChain, true],
    ['DRIVERS=="uvcvideo", SUBSYSTEM=="video4linux"', videoChain, true],
    ['DRIVER=="uvcvideo"', videoChain, false],
    ['KERNELS=="1-1.2"', videoChain, true],
    ['KERNELS=="1-1.3"', videoChain, false],
    ['SUBSYSTEMS=="usb", KERNEL=="video0"', videoChain, true],
    ['DEVPATH=="/devices/*/1-1.2"', camChain, true],
    ['ACTION=="add", SUBSYSTEM=="usb"', camChain, true],
    ['SUBSYSTEM!="usb"', camChain, false],
    ['SUBSYSTEM=="usb|tty"', camChain, true],
  ];
  for (const [rule, chain, expected] of cases)
    it(`${rule} ${expected ? 'matches' : 'does not match'} ${chain[0]?.kernel}`, () => {
      assert.equal(matches(rule, chain), expected);
    });

  it('matches nothing on an empty chain', () => {
    assert.equal(matches('SUBSYSTEM!="usb"', []), false);
  });
});
