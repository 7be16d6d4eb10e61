// Checks a value against the structural OpenAPI schema of a custom resource
// (src/api/schema.ts) and fills in defaults, as the API server does for what
// kubectl apply sends; so the config file accepts exactly what a cluster
// would. CEL rules (x-kubernetes-validations) are not evaluated here; the
// caller checks those by hand. Discovery handlers validate their details and
// the agent checks what handlers report with the same function
// (discovery-handlers/details.ts), so every message names the field.

/** The subset of OpenAPI v3 that structural CRD schemas use. */
export interface SchemaNode {
  readonly type?: string;
  readonly required?: readonly string[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly additionalProperties?: SchemaNode | boolean;
  readonly items?: SchemaNode;
  readonly enum?: readonly unknown[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly maxItems?: number;
  readonly maxProperties?: number;
  readonly pattern?: string;
  readonly minItems?: number;
  /** Every key of an object must fit this (JSON Schema; not for CRD schemas, which lack it). */
  readonly propertyNames?: SchemaNode;
  /** What a value failing `pattern` should be, in words, for the message. */
  readonly 'x-hint'?: string;
  /** An object must set exactly one of these properties (a union of sources: value, file, secret). */
  readonly 'x-exactly-one-of'?: readonly string[];
  readonly default?: unknown;
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
}

/** Where and why a value does not fit its schema. */
export class SchemaError extends Error {
  readonly code = 'EDGEBRIDGE_SCHEMA';
  /** '' for the value itself when it was checked as the root of a file. */
  readonly field: string;
  /** The message without the field, e.g. "must be an integer". */
  readonly reason: string;
  constructor(field: string, reason: string) {
    super(field === '' ? reason : `${field}: ${reason}`);
    this.name = 'SchemaError';
    this.field = field;
    this.reason = reason;
  }
}

/** How many of an object's known fields an "unknown field" message lists. */
const MAX_KNOWN_LISTED = 16;

/**
 * `field.key` (a bare `key` at the root, field ''), with at most 64 characters
 * of a key that came from untrusted input.
 */
function at(field: string, key: string): string {
  const k = key.length > 64 ? `${key.slice(0, 64)}...` : key;
  return field === '' ? k : `${field}.${k}`;
}

const patterns = new Map<string, RegExp>();

/** Patterns are compiled once: the agent checks every device a handler reports with them. */
function compiled(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, 'u');
    patterns.set(pattern, re);
  }
  return re;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** The value with defaults filled in; throws a SchemaError naming the first field that does not fit. */
export function checkSchema(schema: SchemaNode, value: unknown, field: string): unknown {
  const fail = (reason: string): never => {
    throw new SchemaError(field, reason);
  };
  const actual = typeOf(value);
  if (schema.type !== undefined) {
    const fits =
      schema.type === actual ||
      (schema.type === 'number' && actual === 'integer') ||
      (schema.type === 'integer' && actual === 'integer' && Number.isSafeInteger(value));
    if (!fits) return fail(`must be ${/^[aeiou]/.test(schema.type) ? 'an' : 'a'} ${schema.type}`);
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    return fail(`must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) {
      return fail(`must be at least ${schema.minimum}`);
    }
    if (schema.maximum !== undefined && value > schema.maximum) {
      return fail(`must be at most ${schema.maximum}`);
    }
    return value;
  }
  if (typeof value === 'string') {
    // Kubernetes counts characters (code points), not UTF-16 units.
    const length = Array.from(value).length;
    if (schema.minLength !== undefined && length < schema.minLength) {
      return fail(`must be at least ${schema.minLength} characters`);
    }
    if (schema.maxLength !== undefined && length > schema.maxLength) {
      return fail(`must be at most ${schema.maxLength} characters`);
    }
    if (schema.pattern !== undefined && !compiled(schema.pattern).test(value)) {
      const hint = schema['x-hint'];
      return fail(
        hint === undefined ? `must match ${schema.pattern}` : `must be ${hint} (${schema.pattern})`,
      );
    }
    return value;
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      return fail(`must have at most ${schema.maxItems} items`);
    }
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      return fail(`must have at least ${schema.minItems} items`);
    }
    const items = schema.items;
    return items === undefined
      ? value
      : value.map((v: unknown, i) => checkSchema(items, v, `${field}[${i}]`));
  }
  if (typeof value === 'object' && value !== null) {
    return checkObject(schema, value as Record<string, unknown>, field);
  }
  return value;
}

function checkObject(
  schema: SchemaNode,
  value: Record<string, unknown>,
  field: string,
): Record<string, unknown> {
  const keys = Object.keys(value);
  if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) {
    throw new SchemaError(field, `must have at most ${schema.maxProperties} entries`);
  }
  const names = schema.propertyNames;
  if (names !== undefined) {
    for (const key of keys) {
      try {
        checkSchema(names, key, 'key');
      } catch (err) {
        // The key itself is what is wrong: say so, quoting at most 64 characters of it.
        if (!(err instanceof SchemaError)) throw err;
        const reason = err.message.slice(err.field.length + 2);
        throw new SchemaError(field, `key ${JSON.stringify(key.slice(0, 64))} ${reason}`);
      }
    }
  }
  for (const key of schema.required ?? []) {
    if (!Object.hasOwn(value, key)) throw new SchemaError(at(field, key), 'is required');
  }
  const oneOf = schema['x-exactly-one-of'];
  if (oneOf !== undefined && oneOf.filter((k) => Object.hasOwn(value, k)).length !== 1) {
    throw new SchemaError(field, `needs exactly one of ${oneOf.join(', ')}`);
  }
  if (schema['x-kubernetes-preserve-unknown-fields'] === true && schema.properties === undefined) {
    return value;
  }
  const out: Record<string, unknown> = {};
  const properties = schema.properties ?? {};
  for (const key of keys) {
    const sub = Object.hasOwn(properties, key) ? properties[key] : undefined;
    const extra = schema.additionalProperties;
    if (sub !== undefined) {
      out[key] = checkSchema(sub, value[key], at(field, key));
    } else if (typeof extra === 'object') {
      out[key] = checkSchema(extra, value[key], at(field, key));
    } else if (extra === true || schema['x-kubernetes-preserve-unknown-fields'] === true) {
      out[key] = value[key];
    } else {
      // kubectl apply validates strictly (the default since Kubernetes 1.27): an unknown field is an error.
      throw new SchemaError(at(field, key), `unknown field${knownFields(schema)}`);
    }
  }
  for (const [key, sub] of Object.entries(properties)) {
    if (!Object.hasOwn(out, key) && sub.default !== undefined) {
      // Checked like a given value, so that a defaulted object gets its fields' defaults too
      // (as the API server's structural defaulting does).
      out[key] = checkSchema(sub, structuredClone(sub.default), at(field, key));
    }
  }
  return out;
}

/** " (known: a, b, c)" for an unknown-field message; a typo is then easy to spot. */
function knownFields(schema: SchemaNode): string {
  const names = Object.keys(schema.properties ?? {});
  if (names.length === 0) return '';
  const listed = names.slice(0, MAX_KNOWN_LISTED).join(', ');
  return ` (known: ${listed}${names.length > MAX_KNOWN_LISTED ? ', ...' : ''})`;
}
