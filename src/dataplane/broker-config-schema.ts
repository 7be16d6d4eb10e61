// The shape of the node broker's configuration file (--broker-config), checked
// by the project's schema module (src/util/schema-check.ts). Strict: an
// unknown key is an error, so that a typo cannot widen access. broker-config.ts
// adds what a schema cannot say (reserved and duplicate names, label selectors).
import type { SchemaNode } from '../util/schema-check.ts';

const DNS_LABEL: SchemaNode = {
  type: 'string',
  pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
  'x-hint': 'a DNS label (a namespace name)',
};
const DNS_SUBDOMAIN: SchemaNode = {
  type: 'string',
  pattern: '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$',
  'x-hint': 'a DNS subdomain (an object name)',
};
const ABSOLUTE_PATH: SchemaNode = { type: 'string', pattern: '^/', 'x-hint': 'an absolute path' };

/** Which Devices a user may read (and, with publish, write to): a namespace, names and/or a selector. */
function grantList(namespaceRequired: boolean): SchemaNode {
  return {
    type: 'array',
    items: {
      type: 'object',
      ...(namespaceRequired ? { required: ['namespace'] } : {}),
      properties: {
        namespace: DNS_LABEL,
        names: { type: 'array', items: DNS_SUBDOMAIN },
        selector: {
          type: 'object',
          properties: {
            matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
            matchExpressions: {
              type: 'array',
              items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
            },
          },
        },
        publish: { type: 'boolean', default: false },
      },
    },
    default: [],
  };
}

/** Topic filters outside edgebridge/ (broker-config.ts checks each one's syntax and first level). */
const FILTERS: SchemaNode = {
  type: 'array',
  maxItems: 256,
  items: { type: 'string', minLength: 1, maxLength: 1024 },
  default: [],
};

/** The sensor topics a principal may publish (announcements, readings, wills) and subscribe to (its commands). */
const SENSOR_TOPICS: SchemaNode = {
  type: 'object',
  properties: { publish: FILTERS, subscribe: FILTERS },
};

const KEY_REF: SchemaNode = {
  type: 'object',
  required: ['namespace', 'name', 'key'],
  properties: {
    namespace: DNS_LABEL,
    name: DNS_SUBDOMAIN,
    key: {
      type: 'string',
      pattern: '^[-._a-zA-Z0-9]{1,253}$',
      'x-hint': "a key of letters, digits, '-', '_' or '.'",
    },
  },
};

export const BROKER_CONFIG_SCHEMA: SchemaNode = {
  type: 'object',
  properties: {
    anonymous: {
      type: 'object',
      properties: { devices: grantList(true), sensorTopics: SENSOR_TOPICS },
    },
    maxPacketBytes: { type: 'integer', minimum: 1024, maximum: 256 * 1024 * 1024 },
    tls: {
      type: 'object',
      required: ['certFile', 'keyFile'],
      properties: { certFile: ABSOLUTE_PATH, keyFile: ABSOLUTE_PATH, clientCaFile: ABSOLUTE_PATH },
    },
    users: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'passwordFrom'],
        properties: {
          name: {
            type: 'string',
            pattern: '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$',
            'x-hint': "a user name of letters, digits, '_', '.', '@' or '-'",
          },
          passwordFrom: {
            type: 'object',
            'x-exactly-one-of': ['secretKeyRef', 'configMapKeyRef', 'file'],
            properties: { secretKeyRef: KEY_REF, configMapKeyRef: KEY_REF, file: ABSOLUTE_PATH },
          },
          devices: grantList(true),
          sensorTopics: SENSOR_TOPICS,
        },
      },
      default: [],
    },
    serviceAccounts: {
      type: 'object',
      properties: {
        audiences: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        cacheSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
        grants: {
          type: 'array',
          items: {
            type: 'object',
            required: ['namespace'],
            properties: {
              namespace: DNS_LABEL,
              name: DNS_SUBDOMAIN,
              // A grant's namespace defaults to the ServiceAccount's own.
              devices: grantList(false),
            },
          },
          default: [],
        },
      },
    },
  },
};
