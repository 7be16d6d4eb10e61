// The shape of the uplink's configuration file, checked by the project's schema
// module (src/util/schema-check.ts) with its defaults; config.ts adds what a
// schema cannot say (URL schemes, topic filters, sizes with units).
import type { SchemaNode } from '../util/schema-check.ts';

const NON_EMPTY: SchemaNode = { type: 'string', minLength: 1 };

/** A size: bytes as a number, or a string such as 256Mi or 64k; config.ts turns it into bytes. */
export const SIZE_PATTERN = '^\\s*(\\d+)\\s*([kKmMgG][iI]?)?[bB]?\\s*$';
const SIZE: SchemaNode = {
  pattern: SIZE_PATTERN,
  'x-hint': 'a size such as 268435456 or 256Mi',
  minimum: 1,
};

/** Where a secret or a file's content comes from: exactly one of value, file, secretKeyRef. */
const VALUE_SOURCE: SchemaNode = {
  type: 'object',
  'x-exactly-one-of': ['value', 'file', 'secretKeyRef'],
  properties: {
    value: NON_EMPTY,
    file: NON_EMPTY,
    secretKeyRef: {
      type: 'object',
      required: ['namespace', 'name', 'key'],
      properties: { namespace: NON_EMPTY, name: NON_EMPTY, key: NON_EMPTY },
    },
  },
};

export const UPLINK_CONFIG_SCHEMA: SchemaNode = {
  type: 'object',
  required: ['cloud', 'cluster'],
  properties: {
    cloud: {
      type: 'object',
      required: ['url'],
      properties: {
        url: NON_EMPTY,
        clientId: NON_EMPTY,
        username: VALUE_SOURCE,
        password: VALUE_SOURCE,
        tls: {
          type: 'object',
          properties: {
            ca: VALUE_SOURCE,
            cert: VALUE_SOURCE,
            key: VALUE_SOURCE,
            servername: NON_EMPTY,
          },
        },
        keepaliveSeconds: { type: 'integer', minimum: 1, maximum: 65535, default: 30 },
        maxInFlight: { type: 'integer', minimum: 1, maximum: 65535, default: 1000 },
      },
    },
    cluster: {
      type: 'string',
      pattern: '^[^/+#]+$',
      'x-hint': "a non-empty name without '/', '+' or '#'",
    },
    prefix: {
      type: 'string',
      pattern: '^[^+#]+$',
      'x-hint': "a topic prefix without wildcards '+' or '#'",
      default: 'edgebridge/{cluster}/{node}',
    },
    discoveries: { type: 'boolean', default: true },
    topics: {
      type: 'array',
      items: {
        type: 'object',
        required: ['filter'],
        properties: {
          filter: NON_EMPTY,
          priority: { type: 'integer', minimum: 0, maximum: 9 },
          ttlSeconds: { type: 'integer', minimum: 1, maximum: 2592000 },
        },
      },
      default: [],
    },
    spool: {
      type: 'object',
      properties: {
        dir: { ...NON_EMPTY, default: 'uplink-spool' },
        maxBytes: { ...SIZE, default: 256 * 1024 ** 2 },
        onFull: { type: 'string', enum: ['block', 'drop-oldest'], default: 'block' },
        sync: { type: 'string', enum: ['group', 'always'], default: 'group' },
        groupIntervalMs: { type: 'integer', minimum: 0, maximum: 10000 },
        groupMaxMessages: { type: 'integer', minimum: 1, maximum: 1_000_000 },
        groupWhenIdle: { type: 'boolean' },
      },
      default: {},
    },
    downlink: {
      type: 'object',
      properties: {
        enabled: { type: 'boolean', default: false },
        maxPayloadBytes: { ...SIZE, default: 65536 },
      },
      default: {},
    },
    nodeBroker: {
      type: 'object',
      required: ['url'],
      properties: {
        url: NON_EMPTY,
        clientId: NON_EMPTY,
        username: VALUE_SOURCE,
        password: VALUE_SOURCE,
      },
    },
  },
};
