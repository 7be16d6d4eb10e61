import type { DiscoveredDevice, DiscoveryHandler, HandlerContext } from '../handler.ts';
import { Wakeup } from '../wakeup.ts';
import { parseUsbDetails } from './details.ts';
import { deviceMatches, type UsbFilter } from './filter.ts';
import { listPortPaths, MAX_DEVICES, readUsbDevice, sysfsRoot } from './sysfs.ts';
import { toDiscovered, toDiscoveredList } from './to-discovered.ts';
import type { UsbDeviceInfo } from './usb-device.ts';

/**
 * Interface drivers bind, and their nodes (ttyACM0, video0) appear, after the
 * device's own add event: the device is read again this long after it
 * attaches (a few one-off reads, not a poll).
 */
const SETTLE_MS = [100, 400, 2000];

/**
 * USB devices on this node, local to it (not shared). libusb (the `usb`
 * package, 2.x) lists them at start and reports hot-plug as it happens from
 * udev's events; everything else about a device comes from sysfs.
 */
export const usbHandler: DiscoveryHandler<UsbFilter> = {
  name: 'usb',
  shared: false,
  validate: parseUsbDetails,
  discover,
};

type Change = {
  kind: 'attach' | 'detach' | 'settle';
  busnum: number;
  devnum: number;
  ports: number[];
};

async function* discover(
  filter: UsbFilter,
  ctx: HandlerContext,
): AsyncGenerator<DiscoveredDevice[]> {
  if (ctx.signal.aborted) return;
  // Loaded here: a node without libusb's needs fails this Discovery, not the agent.
  const { usb, getDeviceList } = await import('usb');
  const root = sysfsRoot();
  const wakeup = new Wakeup();
  const changes: Change[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const change =
    (kind: Change['kind']) =>
    (d: { busNumber: number; deviceAddress: number; portNumbers?: number[] }) => {
      changes.push({
        kind,
        busnum: d.busNumber,
        devnum: d.deviceAddress,
        ports: d.portNumbers ?? [],
      });
      wakeup.notify();
    };
  const onAttach = change('attach');
  const onDetach = change('detach');
  // Listening before listing: a device plugged in meanwhile is not missed (an attach for a listed one changes nothing).
  // Without libusb hot-plug the package would poll the bus instead: not here.
  let hotplug = false;
  try {
    hotplug = usb._supportedHotplugEvents();
    if (hotplug) {
      usb.on('attach', onAttach);
      usb.on('detach', onDetach);
    }
  } catch (err) {
    ctx.log.error({ err: (err as Error).message }, 'cannot follow USB hot-plug');
  }
  if (!hotplug)
    ctx.log.error('libusb has no hot-plug here; only the devices present at start are listed');
  // "bus:address" -> the device there, matched or not (a detach needs to know which it was).
  const present = new Map<string, UsbDeviceInfo | undefined>();
  const key = (busnum: number, devnum: number): string => `${busnum}:${devnum}`;
  const logged = new Map<string, string>();

  const read = (busnum: number, devnum: number, ports: number[]): UsbDeviceInfo | undefined => {
    // A root hub has no port; it is the bus, not a device a workload uses.
    if (ports.length === 0) return undefined;
    const portPath = `${busnum}-${ports.join('.')}`;
    const result = readUsbDevice(root, portPath);
    // One line per bad device: the re-read after attach does not repeat it.
    const problems = result.problems.join('; ');
    if (problems !== '' && logged.get(key(busnum, devnum)) !== problems)
      ctx.log.warn(
        { portPath, problems: result.problems.slice(0, 8) },
        result.ok ? 'USB device has bad fields; left out' : 'USB device unreadable; skipped',
      );
    logged.set(key(busnum, devnum), problems);
    if (!result.ok) return undefined;
    if (result.device.busnum !== busnum || result.device.devnum !== devnum) {
      ctx.log.warn({ portPath, busnum, devnum }, 'USB device changed while being read; skipped');
      return undefined;
    }
    return deviceMatches(filter, result.device) ? result.device : undefined;
  };
  const list = (): DiscoveredDevice[] =>
    toDiscoveredList([...present.values()].filter((d) => d !== undefined));

  try {
    try {
      const all = getDeviceList();
      if (all.length > MAX_DEVICES)
        ctx.log.warn(
          { listed: all.length, kept: MAX_DEVICES },
          'too many USB devices; the rest are ignored',
        );
      for (const d of all.slice(0, MAX_DEVICES))
        present.set(
          key(d.busNumber, d.deviceAddress),
          read(d.busNumber, d.deviceAddress, d.portNumbers ?? []),
        );
    } catch (err) {
      ctx.log.error({ err: (err as Error).message }, 'cannot list USB devices');
    }
    ctx.log.info(
      { listed: present.size, matched: list().length, sysfs: root },
      'USB devices listed',
    );
    if (listPortPaths(root).length === 0 && present.size > 0)
      ctx.log.warn({ sysfs: root }, 'no USB devices in sysfs; is /sys mounted?');
    yield list();
    while (!ctx.signal.aborted) {
      await wakeup.wait(3_600_000, ctx.signal);
      for (const c of changes.splice(0)) {
        const k = key(c.busnum, c.devnum);
        if (c.kind === 'settle' && !present.has(k)) continue;
        const before = present.get(k);
        if (c.kind === 'detach') {
          present.delete(k);
          logged.delete(k);
          if (before !== undefined) announce(before, 'detach');
          continue;
        }
        if (before === undefined && !present.has(k) && present.size >= MAX_DEVICES) continue;
        const device = read(c.busnum, c.devnum, c.ports);
        present.set(k, device);
        // Matched now and not before (or the reverse, when a re-read shows otherwise): announced once.
        if (device !== undefined && before === undefined) announce(device, 'attach');
        if (device === undefined && before !== undefined) announce(before, 'detach');
        if (c.kind === 'attach')
          for (const ms of SETTLE_MS) {
            const timer = setTimeout(() => {
              timers.delete(timer);
              if (!present.has(k)) return;
              changes.push({ ...c, kind: 'settle' });
              wakeup.notify();
            }, ms).unref();
            timers.add(timer);
          }
      }
      yield list();
    }
  } finally {
    usb.off('attach', onAttach);
    usb.off('detach', onDetach);
    for (const t of timers) clearTimeout(t);
  }

  function announce(device: UsbDeviceInfo, event: 'attach' | 'detach'): void {
    // The id the list gives it: another device with the same serial adds the port path.
    const shared =
      device.serial !== undefined &&
      [...present.values()].some(
        (o) => o !== undefined && o !== device && o.serial === device.serial,
      );
    const d = toDiscovered(device, shared);
    ctx.publish.event(d.id, { event, ts: new Date().toISOString(), properties: d.properties });
    ctx.publish.state(d.id, event === 'attach' ? 'online' : 'offline');
    ctx.log.info(
      { device: d.id, portPath: device.portPath, event },
      `USB device ${event === 'attach' ? 'attached' : 'detached'}`,
    );
  }
}
