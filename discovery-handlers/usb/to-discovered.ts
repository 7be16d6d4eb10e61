import type { DiscoveredDevice } from '../handler.ts';
import type { UsbDeviceInfo } from './usb-device.ts';

const pad3 = (n: number): string => String(n).padStart(3, '0');

/**
 * The Device for a USB device. Its id is the serial number where there is one
 * (the same across ports and restarts), else the port path (the same when it
 * is plugged into the same port again); `serialShared` says another present
 * device reports the same serial (cheap adapters do), and then the port path
 * is added so that neither is dropped.
 */
export function toDiscovered(d: UsbDeviceInfo, serialShared = false): DiscoveredDevice {
  const id =
    d.serial === undefined ? d.portPath : serialShared ? `${d.serial}@${d.portPath}` : d.serial;
  const properties: Record<string, string> = {
    USB_VENDOR_ID: d.vendorId,
    USB_PRODUCT_ID: d.productId,
    USB_DEVICE_CLASS: d.deviceClass,
    USB_BUS: pad3(d.busnum),
    USB_ADDRESS: pad3(d.devnum),
    USB_PORT_PATH: d.portPath,
    USB_DEVNODE: d.devnode,
  };
  if (d.manufacturer !== undefined) properties.USB_MANUFACTURER = d.manufacturer;
  if (d.product !== undefined) properties.USB_PRODUCT = d.product;
  if (d.serial !== undefined) properties.USB_SERIAL = d.serial;
  if (d.nodes.length > 0) properties.USB_DEVICE_NODES = d.nodes.join(',');
  return {
    id,
    properties,
    labels: { 'usb.edgebridge.io/vendor': d.vendorId, 'usb.edgebridge.io/product': d.productId },
    // usbfs for programs that use libusb, then the interfaces' nodes.
    deviceNodes: [d.devnode, ...d.nodes].map((hostPath) => ({ hostPath })),
  };
}

/** Devices for a list, with shared serials told apart by port path. */
export function toDiscoveredList(devices: readonly UsbDeviceInfo[]): DiscoveredDevice[] {
  const count = new Map<string, number>();
  for (const d of devices)
    if (d.serial !== undefined) count.set(d.serial, (count.get(d.serial) ?? 0) + 1);
  return devices.map((d) =>
    toDiscovered(d, d.serial !== undefined && (count.get(d.serial) ?? 0) > 1),
  );
}
