// Dotted-quad IPv4 addresses and CIDR blocks as numbers. Pure.

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** An IPv4 address in dotted-quad form, as a schema pattern. */
export const IPV4_PATTERN = `^${OCTET}(\\.${OCTET}){3}$`;
/** An IPv4 address or an `address/prefix` block. */
export const IPV4_OR_CIDR_PATTERN = `^${OCTET}(\\.${OCTET}){3}(/([0-9]|[12][0-9]|3[0-2]))?$`;

const ipv4 = new RegExp(IPV4_PATTERN);

export function isIpv4(s: string): boolean {
  return ipv4.test(s);
}

export function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => String(Math.floor(n / 2 ** shift) % 256)).join('.');
}

/** The first address of `cidr` and how many it holds; a plain address is a block of one. */
export function cidrRange(cidr: string): { first: number; count: number } {
  const [address = '', prefix = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(prefix));
  return { first: Math.floor(ipv4ToNumber(address) / size) * size, count: size };
}

/**
 * The host addresses of `targets` (addresses or CIDR blocks), in order and
 * without repeats; a block of 4 or more loses its network and broadcast
 * addresses. Stops once `max` + 1 are found, so a caller can refuse too many
 * without enumerating a /0.
 */
export function expandTargets(targets: readonly string[], max: number): string[] {
  const seen = new Set<number>();
  for (const target of targets) {
    const { first, count } = cidrRange(target);
    const [from, to] = count >= 4 ? [first + 1, first + count - 2] : [first, first + count - 1];
    for (let n = from; n <= to; n++) {
      seen.add(n);
      if (seen.size > max) return [...seen].map(numberToIpv4);
    }
  }
  return [...seen].map(numberToIpv4);
}

/** Whether `address` lies in the block `address/prefixLength` of `network`. */
export function sameSubnet(address: string, network: string, prefixLength: number): boolean {
  const size = 2 ** (32 - prefixLength);
  return Math.floor(ipv4ToNumber(address) / size) === Math.floor(ipv4ToNumber(network) / size);
}
