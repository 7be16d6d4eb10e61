// The IPv4 address of each interface a network handler (mdns, onvif) listens on.
import { networkInterfaces } from 'node:os';

/** A configured interface has no IPv4 address on this node; `code` names the handler. */
export class InterfaceNotFoundError extends Error {
  readonly code: string;
  constructor(name: string, code: string) {
    super(`network interface '${name}' has no IPv4 address on this node`);
    this.name = 'InterfaceNotFoundError';
    this.code = code;
  }
}

/** The first IPv4 address of interface `name`, or undefined. */
export function interfaceAddress(name: string): string | undefined {
  return networkInterfaces()[name]?.find((a) => a.family === 'IPv4')?.address;
}

/** The address of each interface in `names`; throws InterfaceNotFoundError with `code` for one without. */
export function interfaceAddresses(names: readonly string[], code: string): string[] {
  return names.map((name) => {
    const address = interfaceAddress(name);
    if (address === undefined) throw new InterfaceNotFoundError(name, code);
    return address;
  });
}
