// Which interfaces to probe on by default.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const IFF_MULTICAST = 0x1000;

/** The interface's flags from sysfs, or undefined where they cannot be read. */
function flags(name: string): number | undefined {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** Every up, non-loopback interface with multicast and an IPv4 address. */
export function defaultInterfaces(): string[] {
  return Object.entries(networkInterfaces())
    .filter(([name, addrs]) => {
      if (!(addrs ?? []).some((a) => a.family === 'IPv4' && !a.internal)) return false;
      const f = flags(name);
      // Without sysfs, trust what os.networkInterfaces() lists (it lists only interfaces with an address).
      return (
        f === undefined ||
        ((f & IFF_UP) !== 0 && (f & IFF_MULTICAST) !== 0 && (f & IFF_LOOPBACK) === 0)
      );
    })
    .map(([name]) => name);
}
