// Reads USB devices from sysfs, the kernel's own view: ids, strings (the
// kernel has already fetched and converted the string descriptors, so no
// control transfer is needed), the port path, and the device nodes of the
// interfaces. All of it is untrusted: every read is capped, text that is not
// UTF-8 or holds control characters is refused, and walks are bounded.
import { opendirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { BoundedFileError, readBoundedFileSync } from '../../src/util/bounded-file.ts';
import type { RuleNode } from './udev-rules.ts';
import type { UsbDeviceInfo } from './usb-device.ts';

/** Sysfs attributes are at most a page; a uevent file rarely more than 1 KiB. */
const MAX_ATTRIBUTE_BYTES = 4096;
const MAX_UEVENT_BYTES = 16 * 1024;
/** What a USB string may be: descriptors carry at most 126 UTF-16 units. */
const MAX_STRING_CHARS = 256;
/** Devices listed from /sys/bus/usb/devices, and nodes looked at below one device. */
export const MAX_DEVICES = 4096;
const MAX_NODES_PER_DEVICE = 64;
const MAX_DEPTH = 6;
const MAX_PARENTS = 32;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The sysfs to read: umockdev's test bed (UMOCKDEV_DIR/sys) when running
 * under it, else /sys. Reading the test bed's directory directly avoids the
 * preload library's /sys redirection, which Node's readdir does not pass.
 */
export function sysfsRoot(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.UMOCKDEV_DIR;
  return dir !== undefined && dir.startsWith('/') ? path.join(dir, 'sys') : '/sys';
}

/**
 * The one place that reads a sysfs file: at most `max` bytes (a longer file
 * is refused, not truncated), or undefined if it does not exist. Throws
 * BadAttribute for content that is too long.
 */
export function readSysfsFile(file: string, max = MAX_ATTRIBUTE_BYTES): Buffer | undefined {
  try {
    return readBoundedFileSync(file, { maxBytes: max });
  } catch (err) {
    if (err instanceof BoundedFileError && err.code === 'EDGEBRIDGE_FILE_TOO_LARGE')
      throw new BadAttribute(`${path.basename(file)}: longer than ${max} bytes`);
    // Missing, not a regular file, EIO from a device gone mid-read: as good as missing.
    return undefined;
  }
}

class BadAttribute extends Error {}

/** A text attribute without its trailing newline; throws BadAttribute for non-UTF-8. */
function readText(file: string, max?: number): string | undefined {
  const buf = readSysfsFile(file, max);
  if (buf === undefined) return undefined;
  try {
    return utf8.decode(buf).replace(/\n$/, '');
  } catch {
    throw new BadAttribute(`${path.basename(file)}: not UTF-8`);
  }
}

/** KEY=VALUE lines of a uevent file (or udev's E:KEY=VALUE database lines). */
function parseEnv(text: string | undefined, prefix = ''): Record<string, string> {
  const env: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const line of (text ?? '').split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const eq = line.indexOf('=');
    if (eq > prefix.length) env[line.slice(prefix.length, eq)] = line.slice(eq + 1);
  }
  return env;
}

const linkName = (file: string): string | undefined => {
  try {
    return path.basename(readlinkSync(file));
  } catch {
    return undefined;
  }
};

/** A sysfs directory as a rule sees it; attributes are read when a rule asks. */
function ruleNode(root: string, dir: string, problems: string[]): RuleNode {
  let uevent: Record<string, string>;
  try {
    uevent = parseEnv(readText(path.join(dir, 'uevent'), MAX_UEVENT_BYTES));
  } catch (err) {
    problems.push(`${path.basename(dir)}/${(err as Error).message}`);
    uevent = {};
  }
  // udev's database adds the ID_* properties on a real node (if /run/udev is visible).
  const major = uevent.MAJOR;
  const minor = uevent.MINOR;
  let env = uevent;
  if (major !== undefined && minor !== undefined && /^\d+$/.test(major + minor)) {
    try {
      const db = readText(`/run/udev/data/c${major}:${minor}`, MAX_UEVENT_BYTES);
      env = { ...parseEnv(db, 'E:'), ...uevent };
    } catch {
      // an unreadable database adds nothing
    }
  }
  const attrs = new Map<string, string | undefined>();
  const subsystem = linkName(path.join(dir, 'subsystem')) ?? uevent.SUBSYSTEM;
  const driver = linkName(path.join(dir, 'driver')) ?? uevent.DRIVER;
  return {
    kernel: path.basename(dir),
    devpath: dir.slice(root.length),
    ...(subsystem !== undefined ? { subsystem } : {}),
    ...(driver !== undefined ? { driver } : {}),
    env,
    attr(name) {
      if (!attrs.has(name)) {
        let v: string | undefined;
        try {
          v = readText(path.join(dir, name));
        } catch {
          v = undefined; // a bad attribute matches nothing
        }
        attrs.set(name, v);
      }
      return attrs.get(name);
    },
  };
}

/** Port paths (kernel names such as 1-1.2) of the USB devices in sysfs, root hubs left out. */
export function listPortPaths(root: string): string[] {
  const out: string[] = [];
  let dir;
  try {
    dir = opendirSync(path.join(root, 'bus/usb/devices'));
  } catch {
    return out;
  }
  try {
    for (let e = dir.readSync(); e !== null && out.length < MAX_DEVICES; e = dir.readSync())
      if (PORT_PATH.test(e.name)) out.push(e.name);
  } finally {
    dir.closeSync();
  }
  return out;
}

const PORT_PATH = /^[0-9]{1,3}-[0-9]{1,3}(\.[0-9]{1,3}){0,6}$/;
const HEX4 = /^[0-9a-fA-F]{4}$/;
const HEX2 = /^[0-9a-fA-F]{2}$/;
const DEVNAME = /^[A-Za-z0-9_+:.-]{1,64}(\/[A-Za-z0-9_+:.-]{1,64}){0,4}$/;

export type ReadResult =
  { ok: true; device: UsbDeviceInfo; problems: string[] } | { ok: false; problems: string[] };

/**
 * The device at /sys/bus/usb/devices/<portPath>. Fields it cannot do
 * without (ids, bus and address) make it unusable; a bad string is left out.
 * Either way `problems` says what was wrong, for one log line.
 */
export function readUsbDevice(root: string, portPath: string): ReadResult {
  const problems: string[] = [];
  if (!PORT_PATH.test(portPath)) return { ok: false, problems: ['not a port path'] };
  let dir: string;
  try {
    dir = realpathSync(path.join(root, 'bus/usb/devices', portPath));
  } catch {
    return { ok: false, problems: ['gone from sysfs'] };
  }
  if (!dir.startsWith(`${root}/devices/`)) return { ok: false, problems: ['outside /sys/devices'] };
  const field = (name: string, re: RegExp): string | undefined => {
    try {
      const v = readText(path.join(dir, name));
      if (v === undefined) problems.push(`${name}: missing`);
      else if (!re.test(v)) problems.push(`${name}: not valid`);
      else return v.toLowerCase();
    } catch (err) {
      problems.push((err as Error).message);
    }
    return undefined;
  };
  const text = (name: string): string | undefined => {
    try {
      const v = readText(path.join(dir, name));
      if (v === undefined) return undefined;
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f\ufffd]/.test(v))
        problems.push(`${name}: control or invalid characters`);
      else if (Array.from(v).length > MAX_STRING_CHARS)
        problems.push(`${name}: longer than ${MAX_STRING_CHARS}`);
      else if (v.trim() !== '') return v.trim();
    } catch (err) {
      problems.push((err as Error).message);
    }
    return undefined;
  };
  const vendorId = field('idVendor', HEX4);
  const productId = field('idProduct', HEX4);
  const busnum = Number(field('busnum', /^[0-9]{1,3}$/));
  const devnum = Number(field('devnum', /^[0-9]{1,3}$/));
  const deviceClass = field('bDeviceClass', HEX2) ?? '00';
  if (
    vendorId === undefined ||
    productId === undefined ||
    !(busnum >= 1 && busnum <= 255) ||
    !(devnum >= 1 && devnum <= 127)
  )
    return { ok: false, problems };
  const manufacturer = text('manufacturer');
  const product = text('product');
  const serial = text('serial');

  const chain: RuleNode[] = [];
  for (
    let d = dir;
    d.startsWith(`${root}/devices/`) && chain.length < MAX_PARENTS;
    d = path.dirname(d)
  )
    chain.push(ruleNode(root, d, problems));
  const descendants: RuleNode[][] = [];
  const nodes: string[] = [];
  const interfaceClasses: string[] = [];
  walk(dir, 1, chain, (node, nodeChain) => {
    descendants.push(nodeChain);
    if (/:[0-9]+\.[0-9]+$/.test(node.kernel)) {
      const cls = node.attr('bInterfaceClass');
      if (cls !== undefined && HEX2.test(cls)) interfaceClasses.push(cls.toLowerCase());
    }
    const name = node.env.DEVNAME?.replace(/^\/dev\//, '');
    if (name === undefined) return;
    if (DEVNAME.test(name) && !name.split('/').includes('..')) nodes.push(`/dev/${name}`);
    else problems.push(`${node.kernel}: bad DEVNAME`);
  });

  const pad3 = (n: number): string => String(n).padStart(3, '0');
  return {
    ok: true,
    problems,
    device: {
      portPath,
      busnum,
      devnum,
      vendorId,
      productId,
      deviceClass,
      interfaceClasses: [...new Set(interfaceClasses)],
      ...(manufacturer !== undefined ? { manufacturer } : {}),
      ...(product !== undefined ? { product } : {}),
      ...(serial !== undefined ? { serial } : {}),
      devnode: `/dev/bus/usb/${pad3(busnum)}/${pad3(devnum)}`,
      nodes: [...new Set(nodes)].sort(),
      chain,
      descendants,
    },
  };

  /** Visits the directories below `d` that have a uevent (devices), not entering USB devices behind a hub. */
  function walk(
    d: string,
    depth: number,
    parents: RuleNode[],
    visit: (node: RuleNode, nodeChain: RuleNode[]) => void,
  ): void {
    if (depth > MAX_DEPTH) return;
    let handle;
    try {
      handle = opendirSync(d);
    } catch {
      return;
    }
    try {
      for (let e = handle.readSync(); e !== null; e = handle.readSync()) {
        if (descendants.length >= MAX_NODES_PER_DEVICE) return;
        // Symlinks (subsystem, driver, port) lead elsewhere; a child device is listed on its own.
        if (!e.isDirectory() || PORT_PATH.test(e.name) || e.name === 'power') continue;
        const sub = path.join(d, e.name);
        let chainHere = parents;
        if (readSysfsFileExists(path.join(sub, 'uevent'))) {
          const node = ruleNode(root, sub, problems);
          chainHere = [node, ...parents];
          visit(node, chainHere);
        }
        walk(sub, depth + 1, chainHere, visit);
      }
    } finally {
      handle.closeSync();
    }
  }
}

function readSysfsFileExists(file: string): boolean {
  // stat, not open: opening a FIFO planted there would block.
  try {
    return statSync(file, { throwIfNoEntry: false })?.isFile() === true;
  } catch {
    return false;
  }
}
