import type { RuleNode } from './udev-rules.ts';

/** What the handler knows of one USB device, read from sysfs (see sysfs.ts). */
export interface UsbDeviceInfo {
  /** Kernel name: bus, then the ports from the root hub, e.g. `1-1.2`. */
  portPath: string;
  busnum: number;
  devnum: number;
  /** Four lowercase hex digits. */
  vendorId: string;
  productId: string;
  /** Two lowercase hex digits: bDeviceClass and each interface's bInterfaceClass. */
  deviceClass: string;
  interfaceClasses: string[];
  manufacturer?: string;
  product?: string;
  serial?: string;
  /** usbfs node, /dev/bus/usb/BBB/DDD. */
  devnode: string;
  /** Nodes of the device's interfaces (/dev/ttyACM0, /dev/video0, ...). */
  nodes: string[];
  /** The USB device, then its parents: what a rule that names the device itself sees. */
  chain: RuleNode[];
  /** For each node below the device (interfaces, ttys, video nodes): that node, then its parents. */
  descendants: RuleNode[][];
}
