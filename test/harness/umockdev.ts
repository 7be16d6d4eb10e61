import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { MissingPeerError, requireProgram } from './processes.ts';
import { scratchDir } from './workdir.ts';

// Fake USB devices for a child process with umockdev. libusb (inside the `usb`
// package, built with its udev back end) enumerates devices through libudev:
// a device needs a sysfs dir with DEVTYPE=usb_device, DEVNAME, busnum/devnum
// and speed attributes and a binary `descriptors` attribute (device +
// configuration descriptors), which is what `usbDeviceText` writes.
// Hot-plug uses a Python driver (gi UMockdev) under umockdev-wrapper, whose
// uevents reach libusb's udev monitor through umockdev's netlink emulation.

const UMOCKDEV_RUN = '/usr/bin/umockdev-run';
const UMOCKDEV_WRAPPER = '/usr/bin/umockdev-wrapper';
// Debian's python3 has the gi bindings; a pyenv python3 earlier on PATH does not.
const PYTHON = '/usr/bin/python3';
const HOTPLUG_DRIVER = path.join(import.meta.dirname, 'umockdev-hotplug.py');

export interface UsbDevice {
  vendorId: number;
  productId: number;
  /** Default 1. */
  busnum?: number;
  /** Default: assigned in order from 2 (1 is the root hub's address on a real bus). */
  devnum?: number;
  /** bcdDevice, default 0x0100. */
  bcdDevice?: number;
  /** Default 0xff (vendor specific); also used for the single interface. */
  deviceClass?: number;
  /** Sysfs text attributes only: string descriptors cannot be read by control transfer under umockdev. */
  manufacturer?: string;
  product?: string;
  serial?: string;
  /**
   * Ports from the root hub, e.g. `1` or `1.2` (behind the hub at port 1,
   * which must be listed or added first); default: the devnum.
   */
  port?: string;
  /** Interfaces (sysfs `B-P:1.N` directories) with the device nodes their drivers made. */
  interfaces?: UsbInterface[];
  /** Sysfs attributes as raw bytes (hex), replacing the text ones: for bad input (not UTF-8, garbage ids). */
  rawAttributes?: Record<string, string>;
}

export interface UsbInterface {
  /** bInterfaceClass, e.g. 0x0e video, 0x02 CDC, 0x03 HID, 0xff vendor (USB-serial). */
  interfaceClass: number;
  driver?: string;
  /**
   * Device nodes below the interface as sysfs paths relative to it, the
   * last part being the node's name: `tty/ttyACM0`, `ttyUSB0/tty/ttyUSB0`,
   * `video4linux/video0`, `0003:046D:C52B.0001/hidraw/hidraw0`.
   */
  nodes?: string[];
}

export interface ResolvedUsbDevice {
  busnum: number;
  devnum: number;
  /** /sys/devices/... path, the id used to remove it again. */
  syspath: string;
  /** /dev/bus/usb/BBB/DDD */
  devnode: string;
  /** The device in umockdev's text format. */
  text: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunWithUsbOptions {
  devices: UsbDevice[];
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Kill (SIGTERM, which umockdev-run passes on) after this long; default 30000. */
  timeoutMs?: number;
}

export interface UsbHotplugOptions {
  /** Devices present from the start. */
  devices: UsbDevice[];
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

export interface UsbHotplug {
  /** PID of the driver (the command is its child). */
  readonly pid: number | undefined;
  /** The driver's and the command's stderr. */
  readonly logFile: string;
  /** Lines the command printed on stdout so far. */
  readonly lines: readonly string[];
  /** Resolves with the first stdout line (past or future) that matches; fails on timeout or exit. */
  waitForLine(what: string, match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Adds a device and sends its "add" uevent. */
  add(device: UsbDevice): Promise<ResolvedUsbDevice>;
  /** Sends a "remove" uevent and deletes the device. */
  remove(device: ResolvedUsbDevice | string): Promise<void>;
  /** Terminates the command and the driver (SIGTERM, then SIGKILL); resolves with the command's exit status. */
  stop(): Promise<number | null>;
}

/** umockdev text for one USB device (see umockdev-record's output format). */
export function usbDeviceText(d: UsbDevice & { devnum: number }): ResolvedUsbDevice {
  const bus = d.busnum ?? 1;
  const dev = d.devnum;
  if (!(bus >= 1 && bus <= 255 && dev >= 1 && dev <= 127))
    throw new Error(`bad USB address ${bus}:${dev}`);
  for (const s of [d.manufacturer, d.product, d.serial]) {
    if (s !== undefined && /[\n\\]/.test(s))
      throw new Error(
        `USB string attributes may not contain newlines or backslashes: ${JSON.stringify(s)}`,
      );
  }
  const raw = d.rawAttributes ?? {};
  const hex4 = (n: number): string => n.toString(16).padStart(4, '0');
  const pad3 = (n: number): string => String(n).padStart(3, '0');
  const cls = d.deviceClass ?? 0xff;
  const bcd = d.bcdDevice ?? 0x0100;
  const port = d.port ?? String(dev);
  if (!/^\d{1,3}(\.\d{1,3}){0,6}$/.test(port)) throw new Error(`bad USB port path ${port}`);
  // Behind a hub, a device's directory is inside the hub's: usb1/1-1/1-1.2.
  const ports = port.split('.');
  const dirs = ports.map((_, i) => `${bus}-${ports.slice(0, i + 1).join('.')}`);
  const syspath = `/sys/devices/pci0000:00/0000:00:14.0/usb${bus}/${dirs.join('/')}`;
  const devnode = `/dev/bus/usb/${pad3(bus)}/${pad3(dev)}`;
  const desc = descriptors(d.vendorId, d.productId, bcd, cls, d);
  const lines = [
    `P: ${syspath.slice('/sys'.length)}`,
    // The node's content is what libusb would read from usbfs: the descriptors.
    `N: ${devnode.slice('/dev/'.length)}=${desc}`,
    `E: DEVNAME=${devnode}`,
    'E: DEVTYPE=usb_device',
    'E: DRIVER=usb',
    `E: PRODUCT=${d.vendorId.toString(16)}/${d.productId.toString(16)}/${bcd.toString(16)}`,
    `E: TYPE=${cls}/0/0`,
    `E: BUSNUM=${pad3(bus)}`,
    `E: DEVNUM=${pad3(dev)}`,
    'E: MAJOR=189',
    `E: MINOR=${(bus - 1) * 128 + dev - 1}`,
    'E: SUBSYSTEM=usb',
    'E: ID_BUS=usb',
    `E: ID_VENDOR_ID=${hex4(d.vendorId)}`,
    `E: ID_MODEL_ID=${hex4(d.productId)}`,
    ...(d.serial !== undefined ? [`E: ID_SERIAL_SHORT=${d.serial}`] : []),
    // Text attributes end in a newline, as in the kernel's sysfs.
    `A: busnum=${bus}\\n`,
    `A: devnum=${dev}\\n`,
    `A: idVendor=${hex4(d.vendorId)}\\n`,
    `A: idProduct=${hex4(d.productId)}\\n`,
    `A: bcdDevice=${hex4(bcd)}\\n`,
    `A: bDeviceClass=${cls.toString(16).padStart(2, '0')}\\n`,
    'A: bNumConfigurations=1\\n',
    'A: bConfigurationValue=1\\n',
    'A: speed=480\\n',
    ...(d.manufacturer !== undefined ? [`A: manufacturer=${d.manufacturer}\\n`] : []),
    ...(d.product !== undefined ? [`A: product=${d.product}\\n`] : []),
    ...(d.serial !== undefined ? [`A: serial=${d.serial}\\n`] : []),
    `H: descriptors=${desc}`,
  ].filter((l) => !/^A: /.test(l) || !Object.hasOwn(raw, l.slice(3, l.indexOf('='))));
  for (const [name, hex] of Object.entries(raw)) lines.push(`H: ${name}=${hex.toUpperCase()}`);
  const records = [lines.join('\n') + '\n'];
  for (const [i, iface] of (d.interfaces ?? []).entries()) {
    const ifacePath = `${syspath}/${bus}-${port}:1.${i}`;
    records.push(
      [
        `P: ${ifacePath.slice('/sys'.length)}`,
        'E: DEVTYPE=usb_interface',
        'E: SUBSYSTEM=usb',
        ...(iface.driver !== undefined ? [`E: DRIVER=${iface.driver}`] : []),
        `E: INTERFACE=${iface.interfaceClass}/0/0`,
        `A: bInterfaceClass=${iface.interfaceClass.toString(16).padStart(2, '0')}\\n`,
        `A: bInterfaceNumber=${String(i).padStart(2, '0')}\\n`,
        '',
      ].join('\n'),
    );
    for (const node of iface.nodes ?? []) {
      const parts = node.split('/');
      const name = parts.at(-1) ?? '';
      // The subsystem is the class directory the node sits in (tty, video4linux, hidraw).
      const subsystem = parts.at(-2) ?? 'tty';
      records.push(
        [
          `P: ${ifacePath.slice('/sys'.length)}/${node}`,
          `N: ${name}`,
          `E: DEVNAME=/dev/${name}`,
          `E: SUBSYSTEM=${subsystem}`,
          '',
        ].join('\n'),
      );
    }
  }
  return { busnum: bus, devnum: dev, syspath, devnode, text: records.join('\n') };
}

/** Gives devices without a devnum the next free address on their bus, from 2. */
function assignAddresses(devices: UsbDevice[], taken = new Set<string>()): ResolvedUsbDevice[] {
  for (const d of devices) if (d.devnum !== undefined) taken.add(`${d.busnum ?? 1}:${d.devnum}`);
  return devices.map((d) => {
    let devnum = d.devnum;
    if (devnum === undefined) {
      devnum = 2;
      while (taken.has(`${d.busnum ?? 1}:${devnum}`)) devnum += 1;
      taken.add(`${d.busnum ?? 1}:${devnum}`);
    }
    return usbDeviceText({ ...d, devnum });
  });
}

/** Writes the devices into one .umockdev file (records separated by blank lines). */
export function writeUmockdevFile(file: string, devices: UsbDevice[]): ResolvedUsbDevice[] {
  const resolved = assignAddresses(devices);
  writeFileSync(file, resolved.map((r) => r.text).join('\n'));
  return resolved;
}

/** Runs `command` to completion under `umockdev-run -d FILE`, with `devices` as the only USB devices. */
export async function runWithUsbDevices(opts: RunWithUsbOptions): Promise<RunResult> {
  requireProgram(UMOCKDEV_RUN);
  const dir = scratchDir('umockdev');
  const file = path.join(dir, 'devices.umockdev');
  writeUmockdevFile(file, opts.devices);
  // TMPDIR puts the test bed in our run directory, not the machine's /tmp.
  const child = spawn(UMOCKDEV_RUN, ['-d', file, '--', opts.command, ...opts.args], {
    env: { ...(opts.env ?? process.env), TMPDIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const untrack = track(child);
  let stdout = '';
  let stderr = '';
  child.once('error', (err) => (stderr += `spawn failed: ${err.message}\n`));
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 30000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  untrack();
  return { code, signal, stdout, stderr };
}

/** Starts `command` in a umockdev test bed whose USB devices can be added and removed while it runs. */
export async function startUsbHotplug(opts: UsbHotplugOptions): Promise<UsbHotplug> {
  for (const p of [UMOCKDEV_WRAPPER, PYTHON]) requireProgram(p);
  requireUmockdevForPython();
  const dir = scratchDir('umockdev-hotplug');
  const file = path.join(dir, 'devices.umockdev');
  const initial = writeUmockdevFile(file, opts.devices);
  const taken = new Set(initial.map((r) => `${r.busnum}:${r.devnum}`));
  const addresses = new Map(initial.map((r) => [r.syspath, r]));
  const logFile = path.join(dir, 'umockdev-hotplug.log');
  const log = createWriteStream(logFile);

  // umockdev-wrapper execs, so the child's PID is the Python driver's.
  const child = spawn(
    UMOCKDEV_WRAPPER,
    [PYTHON, HOTPLUG_DRIVER, file, '--', opts.command, ...opts.args],
    {
      env: { ...(opts.env ?? process.env), TMPDIR: dir, PYTHONUNBUFFERED: '1' },
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    },
  );
  const commandPids: number[] = [];
  const untrack = track(child, commandPids);
  child.once('error', (err) => log.write(`spawn failed: ${err.message}\n`));
  child.stderr.pipe(log, { end: false });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  const replies: Record<string, unknown>[] = [];
  createInterface({ input: child.stdio[3] as Readable }).on('line', (l) => {
    try {
      replies.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      log.write(`unparsable driver reply: ${l}\n`);
    }
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('close', (code) => {
      exitCode = code;
      untrack();
      log.end();
      resolve(code);
    });
  });

  const poll = async <T>(
    what: string,
    check: () => T | undefined,
    timeoutMs: number,
  ): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v !== undefined) return v;
      if (exitCode !== undefined)
        throw new Error(
          `umockdev hot-plug driver exited (${String(exitCode)}) before ${what}; log ${logFile}`,
        );
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; log ${logFile}`);
      await sleep(20);
    }
  };
  // Requests are answered in order; each call waits for the reply after the ones already seen.
  let sent = 0;
  const request = async (req: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const index = sent++;
    child.stdin.write(JSON.stringify(req) + '\n');
    const reply = await poll(
      `reply to ${String(req.op)}`,
      () => replies.filter((r) => 'ok' in r)[index],
      10000,
    );
    if (reply.ok !== true)
      throw new Error(`umockdev ${String(req.op)} failed: ${String(reply.error)}`);
    return reply;
  };

  const stop = async (): Promise<number | null> => {
    if (exitCode === undefined) {
      child.kill('SIGTERM'); // the driver terminates the command and waits for it
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        for (const pid of commandPids) killQuietly(pid);
      }, 5000);
      await exited;
      clearTimeout(timer);
    }
    return exitCode ?? null;
  };

  try {
    const started = await poll(
      'the test bed to start',
      () => replies.find((r) => r.event === 'started'),
      15000,
    );
    if (typeof started.pid === 'number') commandPids.push(started.pid);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    get pid() {
      return exitCode === undefined ? child.pid : undefined;
    },
    logFile,
    lines,
    waitForLine(what, match, timeoutMs = 10000) {
      return poll(what, () => lines.find(match), timeoutMs);
    },
    async add(device) {
      const [resolved] = assignAddresses([device], taken);
      if (resolved === undefined) throw new Error('unreachable');
      await request({ op: 'add', device: resolved.text });
      addresses.set(resolved.syspath, resolved);
      return resolved;
    },
    async remove(device) {
      const syspath = typeof device === 'string' ? device : device.syspath;
      await request({ op: 'remove', syspath });
      const address = typeof device === 'string' ? addresses.get(syspath) : device;
      if (address !== undefined) taken.delete(`${address.busnum}:${address.devnum}`);
    },
    stop,
  };
}

let pythonChecked = false;
/** The hot-plug driver needs the UMockdev GObject bindings (python3-gi, gir1.2-umockdev-1.0). */
function requireUmockdevForPython(): void {
  if (pythonChecked) return;
  const check =
    "import gi; gi.require_version('UMockdev', '1.0'); from gi.repository import UMockdev";
  if (spawnSync(PYTHON, ['-c', check]).status !== 0) {
    throw new MissingPeerError('python3-gi with gir1.2-umockdev-1.0 (gi.repository.UMockdev)');
  }
  pythonChecked = true;
}

/** USB device descriptor + one configuration with one interface and no endpoints, as hex. */
function descriptors(vid: number, pid: number, bcd: number, cls: number, s: UsbDevice): string {
  const lo = (n: number): number => n & 0xff;
  const hi = (n: number): number => (n >> 8) & 0xff;
  const strings = [s.manufacturer, s.product, s.serial].map((v, i) =>
    v !== undefined ? i + 1 : 0,
  );
  // prettier-ignore
  const device = [
    18, 1, 0x00, 0x02, // bLength, DEVICE, bcdUSB 2.00
    cls, 0, 0, 64, // class, subclass, protocol, bMaxPacketSize0
    lo(vid), hi(vid), lo(pid), hi(pid), lo(bcd), hi(bcd),
    ...strings, // iManufacturer, iProduct, iSerialNumber
    1, // bNumConfigurations
  ];
  // wTotalLength 18, 1 interface, value 1, no string, bus powered, 100 mA
  const config = [9, 2, 18, 0, 1, 1, 0, 0x80, 50];
  const iface = [9, 4, 0, 0, 0, cls === 0 ? 0xff : cls, 0, 0, 0];
  return Buffer.from([...device, ...config, ...iface])
    .toString('hex')
    .toUpperCase();
}

// Children here are not PeerProcesses (the hot-plug driver needs stdin and fd 3),
// so they get their own exit hook. SIGTERM, because both umockdev-run and the
// driver pass it on to the command they run; the driver's command is also
// killed by its own PID, as there is no time to wait on exit.
const live = new Map<ChildProcess, number[]>();
process.on('exit', () => {
  for (const [c, pids] of live) {
    c.kill('SIGTERM');
    for (const pid of pids) killQuietly(pid);
  }
});
function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
function track(child: ChildProcess, commandPids: number[] = []): () => void {
  live.set(child, commandPids);
  return () => live.delete(child);
}
