// What a handler may report for one device: the agent checks every device
// against this (src/agent/discovery-run.ts), and handlers that take devices
// from their details (simulated) use it too. The limits are the CRDs'
// (src/api/schema.ts) plus the character rules of Kubernetes labels and of
// environment variable names.
import type { SchemaNode } from '../src/util/schema-check.ts';

/** An absolute path without `.` or `..` segments or NUL. */
const absolutePath: SchemaNode = {
  type: 'string',
  maxLength: 4096,
  pattern: '^(/(?!\\.\\.?(/|$))[^/\\u0000]+)+/?$',
  'x-hint': 'an absolute path without . or .. segments',
};

export const MAX_PROPERTIES = 64;
export const MAX_PROPERTY_VALUE = 4096;

export const discoveredDeviceSchema: SchemaNode = {
  type: 'object',
  required: ['id'],
  properties: {
    id: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      pattern: '^[^\\u0000-\\u001f\\u007f]+$',
      'x-hint': '1-1024 characters without control characters',
    },
    properties: {
      type: 'object',
      default: {},
      maxProperties: MAX_PROPERTIES,
      propertyNames: {
        type: 'string',
        pattern: '^[A-Z_][A-Z0-9_]{0,127}$',
        'x-hint': 'an ENV_STYLE name (A-Z, 0-9, _; at most 128)',
      },
      additionalProperties: { type: 'string', maxLength: MAX_PROPERTY_VALUE },
    },
    labels: {
      type: 'object',
      maxProperties: 16,
      propertyNames: {
        type: 'string',
        pattern:
          '^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$',
        'x-hint': 'a Kubernetes label key',
      },
      additionalProperties: {
        type: 'string',
        pattern: '^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$',
        'x-hint': 'a Kubernetes label value',
      },
    },
    deviceNodes: {
      type: 'array',
      maxItems: 32,
      items: {
        type: 'object',
        required: ['hostPath'],
        properties: {
          hostPath: absolutePath,
          containerPath: absolutePath,
          permissions: { type: 'string', pattern: '^[rwm]{1,3}$', 'x-hint': 'r, w and/or m' },
        },
      },
    },
    mounts: {
      type: 'array',
      maxItems: 32,
      items: {
        type: 'object',
        required: ['hostPath', 'containerPath'],
        properties: {
          hostPath: absolutePath,
          containerPath: absolutePath,
          readOnly: { type: 'boolean' },
        },
      },
    },
  },
};
