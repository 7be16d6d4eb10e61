// The node's IPv4 neighbour (ARP) table, for the macAddresses filter: WS-Discovery
// carries no MAC address, but a camera that answered a probe on the link has
// an entry here. Read from /proc/net/arp of the handler's network namespace.
import { readFile } from 'node:fs/promises';

/** IPv4 address -> MAC (lower case) of complete entries; empty if the table cannot be read. */
export async function readNeighbours(file = '/proc/net/arp'): Promise<Map<string, string>> {
  const table = new Map<string, string>();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return table;
  }
  // IP address, HW type, Flags, HW address, Mask, Device; flag 0x2 is "complete".
  for (const line of text.split('\n').slice(1)) {
    const [ip, , flags, mac] = line.trim().split(/\s+/);
    if (ip === undefined || mac === undefined || (Number(flags) & 0x2) === 0) continue;
    table.set(ip, mac.toLowerCase());
  }
  return table;
}
