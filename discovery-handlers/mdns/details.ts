import { validateDetails, type DetailsSchema, type SchemaNode } from '../details.ts';
import { INTERFACES_SCHEMA } from '../interface-address.ts';

export interface MdnsDetails {
  /** DNS-SD service types such as `_http._tcp`; empty: every type (via `_services._dns-sd._udp.local`). */
  serviceTypes: string[];
  /** Interface names to query on; absent: every up, non-loopback IPv4 interface that is not a container or overlay link. */
  interfaces?: string[];
  /** Glob patterns (`*`, `?`, case-insensitive) on instance names: any include must match, no exclude may. */
  nameFilter?: { include?: string[]; exclude?: string[] };
  /** TXT keys whose values must match these glob patterns (`*`: the key is present). */
  txtFilter?: Record<string, string>;
  /** Instances tracked at most; more are ignored (and logged), so memory stays bounded. */
  maxInstances: number;
}

const glob: SchemaNode = {
  type: 'string',
  minLength: 1,
  maxLength: 253,
};

const schema: DetailsSchema<MdnsDetails> = {
  type: 'object',
  properties: {
    serviceTypes: {
      type: 'array',
      maxItems: 64,
      default: [],
      items: {
        type: 'string',
        pattern: '^_[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\._(tcp|udp)$',
        'x-hint': 'a DNS-SD service type such as _http._tcp',
      },
    },
    interfaces: INTERFACES_SCHEMA,
    nameFilter: {
      type: 'object',
      properties: {
        include: { type: 'array', maxItems: 64, items: glob },
        exclude: { type: 'array', maxItems: 64, items: glob },
      },
    },
    txtFilter: {
      type: 'object',
      maxProperties: 32,
      propertyNames: { type: 'string', minLength: 1, maxLength: 255 },
      additionalProperties: { ...glob, minLength: 0 },
    },
    maxInstances: { type: 'integer', minimum: 1, maximum: 10_000, default: 1024 },
  },
};

export function parseMdnsDetails(details: unknown): MdnsDetails {
  return validateDetails(schema, details);
}
