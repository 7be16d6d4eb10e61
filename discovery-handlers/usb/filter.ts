import { compileGlob, type GlobMatcher } from './glob.ts';
import { ruleMatches, type UdevRule } from './udev-rules.ts';
import type { UsbDeviceInfo } from './usb-device.ts';

/** The details' filters, ready to match: each given kind must hold; within a kind, any value. */
export interface UsbFilter {
  udevRules: readonly UdevRule[];
  vendorIds?: ReadonlySet<string>;
  productIds?: ReadonlySet<string>;
  deviceClasses?: ReadonlySet<string>;
  serialNumbers?: ReadonlySet<string>;
  manufacturers?: readonly GlobMatcher[];
  products?: readonly GlobMatcher[];
  portPaths?: ReadonlySet<string>;
}

/** `0x0A`, `a`, `000a` -> `000a` (width 4) or `0a` (width 2). */
export function normalHex(value: string, width: number): string {
  return value.replace(/^0x/i, '').toLowerCase().padStart(width, '0');
}

export const globs = (patterns: readonly string[]): GlobMatcher[] => patterns.map(compileGlob);

const inSet = (set: ReadonlySet<string> | undefined, v: string | undefined): boolean =>
  set === undefined || (v !== undefined && set.has(v));
const anyGlob = (gs: readonly GlobMatcher[] | undefined, v: string | undefined): boolean =>
  gs === undefined || (v !== undefined && gs.some((g) => g(v)));

/**
 * Whether a device passes the filter. A udev rule matches when it fits the
 * USB device itself or one of the nodes below it (`SUBSYSTEM=="tty"` finds a
 * USB-serial adapter); a device class matches bDeviceClass or any
 * interface's class, since most devices declare their class per interface.
 */
export function deviceMatches(filter: UsbFilter, device: UsbDeviceInfo): boolean {
  const classes = [device.deviceClass, ...device.interfaceClasses];
  return (
    inSet(filter.vendorIds, device.vendorId) &&
    inSet(filter.productIds, device.productId) &&
    (filter.deviceClasses === undefined || classes.some((c) => filter.deviceClasses?.has(c))) &&
    inSet(filter.serialNumbers, device.serial) &&
    anyGlob(filter.manufacturers, device.manufacturer) &&
    anyGlob(filter.products, device.product) &&
    inSet(filter.portPaths, device.portPath) &&
    (filter.udevRules.length === 0 ||
      filter.udevRules.some(
        (rule) =>
          ruleMatches(rule, device.chain) || device.descendants.some((c) => ruleMatches(rule, c)),
      ))
  );
}
