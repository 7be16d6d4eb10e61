import { validateDetails, type DetailsSchema, type SchemaNode } from '../details.ts';
import { InvalidDetailsError } from '../handler.ts';
import { INTERFACES_SCHEMA } from '../interface-address.ts';
import { expandTargets, IPV4_OR_CIDR_PATTERN, IPV4_PATTERN } from './ipv4.ts';

/** Unicast probes go to at most this many addresses (one probe round must stay small). */
export const MAX_UNICAST_ADDRESSES = 1024;

/** Akri's filter shape: keep only the listed values, or all but them. */
export interface FilterList {
  action: 'Include' | 'Exclude';
  items: string[];
}

export interface OnvifDetails {
  /** Interface names to probe on; absent: every up, non-loopback IPv4 interface with multicast. */
  interfaces?: string[];
  /** How long a probe round waits for ProbeMatches before the list is complete. */
  probeTimeoutSeconds: number;
  /** IPv4 addresses or CIDR blocks probed by unicast, where multicast does not reach. */
  unicastTargets: string[];
  ipAddresses?: FilterList;
  macAddresses?: FilterList;
  /** Whole scope URIs, e.g. `onvif://www.onvif.org/location/hall`. */
  scopes?: FilterList;
  /** Endpoint UUIDs, with or without `urn:uuid:`. */
  uuids?: FilterList;
}

const filter = (item: SchemaNode): SchemaNode => ({
  type: 'object',
  required: ['items'],
  properties: {
    action: { type: 'string', enum: ['Include', 'Exclude'], default: 'Include' },
    items: { type: 'array', maxItems: 1024, items: item },
  },
});

const schema: DetailsSchema<OnvifDetails> = {
  type: 'object',
  properties: {
    interfaces: INTERFACES_SCHEMA,
    probeTimeoutSeconds: { type: 'number', minimum: 0.1, maximum: 60, default: 2 },
    unicastTargets: {
      type: 'array',
      maxItems: MAX_UNICAST_ADDRESSES,
      default: [],
      items: {
        type: 'string',
        pattern: IPV4_OR_CIDR_PATTERN,
        'x-hint': 'an IPv4 address or CIDR block such as 192.168.1.0/24',
      },
    },
    ipAddresses: filter({
      type: 'string',
      pattern: IPV4_PATTERN,
      'x-hint': 'an IPv4 address',
    }),
    macAddresses: filter({
      type: 'string',
      pattern: '^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$',
      'x-hint': 'a MAC address such as 00:11:22:33:44:55',
    }),
    scopes: filter({ type: 'string', minLength: 1, maxLength: 1024 }),
    uuids: filter({
      type: 'string',
      pattern: '^(urn:uuid:|uuid:)?[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$',
      'x-hint': 'a UUID, with or without urn:uuid:',
    }),
  },
};

/** Checks onvif details (defaults filled in); throws an InvalidDetailsError naming the field. */
export function parseOnvifDetails(details: unknown): OnvifDetails {
  const d = validateDetails(schema, details);
  if (expandTargets(d.unicastTargets, MAX_UNICAST_ADDRESSES).length > MAX_UNICAST_ADDRESSES) {
    throw new InvalidDetailsError(
      `details.unicastTargets: must hold at most ${MAX_UNICAST_ADDRESSES} addresses in all`,
    );
  }
  return d;
}
