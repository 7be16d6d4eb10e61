// The IPv4 address of each interface a network handler (mdns, onvif) listens on.
import { networkInterfaces } from 'node:os';
import type { SchemaNode } from './details.ts';

/** The `interfaces` field of a handler's details: Linux interface names (IFNAMSIZ - 1 characters). */
export const INTERFACES_SCHEMA: SchemaNode = {
  type: 'array',
  minItems: 1,
  maxItems: 32,
  items: {
    type: 'string',
    pattern: '^[A-Za-z0-9_.:@-]{1,15}$',
    'x-hint': 'a network interface name',
  },
};

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
