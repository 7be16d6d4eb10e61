// Checks of the objects a user writes in the config file (what kubectl apply
// would send), done defensively: the file is user input. A Discovery's spec is
// checked against the CRD's own schema (with its defaults) plus its CEL rules;
// Secrets and ConfigMaps as the API server checks them. Each check throws a
// ShapeError naming the field; the caller turns it into a ConfigDocumentError.
import { discoverySpecSchema } from '../../api/schema.ts';
import { API_VERSION, type Discovery, type DiscoverySpec } from '../../api/types.ts';
import { labelKeyProblem, labelSelectorRequirements, labelValueProblem } from '../selectors.ts';
import { DEFAULT_NAMESPACE, isNamespace, isObjectName } from './meta.ts';
import { checkSchema, SchemaError } from '../../util/schema-check.ts';
import { quote } from '../../util/quote.ts';

export class ShapeError extends Error {
  readonly code = 'EDGEBRIDGE_CONFIG_SHAPE';
  constructor(field: string, reason: string) {
    super(field === '' ? reason : `${field}: ${reason}`);
    this.name = 'ShapeError';
  }
}

type Fields = Record<string, unknown>;

function record(value: unknown, field: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ShapeError(field, 'must be an object');
  }
  return value as Fields;
}

function string(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ShapeError(field, 'must be a string');
  return value;
}

function stringMap(value: unknown, field: string, checkKey: (key: string) => string | undefined) {
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(record(value, field))) {
    const problem = checkKey(key);
    if (problem !== undefined) throw new ShapeError(field, problem);
    out[key] = string(v, `${field}.${key}`);
  }
  return out;
}

const DATA_KEY = /^[-._a-zA-Z0-9]{1,253}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function dataKeyProblem(key: string): string | undefined {
  return DATA_KEY.test(key)
    ? undefined
    : `key ${quote(key)} must be 1-253 characters of letters, digits, '-', '_' or '.'`;
}

export interface Meta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** name, namespace (default "default"), labels, annotations; server-set fields are ignored. */
export function objectMeta(value: unknown): Meta {
  const m = record(value, 'metadata');
  const name = string(m.name, 'metadata.name');
  if (!isObjectName(name)) throw new ShapeError('metadata.name', 'must be a DNS subdomain');
  const namespace =
    m.namespace === undefined ? DEFAULT_NAMESPACE : string(m.namespace, 'metadata.namespace');
  if (!isNamespace(namespace)) throw new ShapeError('metadata.namespace', 'must be a DNS label');
  const meta: Meta = { name, namespace };
  if (m.labels !== undefined) {
    meta.labels = stringMap(m.labels, 'metadata.labels', labelKeyProblem);
    for (const v of Object.values(meta.labels)) {
      const problem = labelValueProblem(v);
      if (problem !== undefined) throw new ShapeError('metadata.labels', problem);
    }
  }
  if (m.annotations !== undefined) {
    meta.annotations = stringMap(m.annotations, 'metadata.annotations', labelKeyProblem);
  }
  return meta;
}

/**
 * The checks the CRD makes with CEL rules (x-kubernetes-validations), which
 * the schema check does not evaluate, and the label selector rules the API
 * server applies to spec.nodeSelector.
 */
function discoveryRules(spec: DiscoverySpec): void {
  const names = new Set<string>();
  for (const [i, p] of (spec.properties ?? []).entries()) {
    const field = `spec.properties[${i}]`;
    if ((p.value === undefined) === (p.valueFrom === undefined)) {
      throw new ShapeError(field, 'exactly one of value and valueFrom must be set');
    }
    if (p.valueFrom !== undefined) {
      const { secretKeyRef, configMapKeyRef } = p.valueFrom;
      if ((secretKeyRef === undefined) === (configMapKeyRef === undefined)) {
        throw new ShapeError(
          `${field}.valueFrom`,
          'exactly one of secretKeyRef and configMapKeyRef must be set',
        );
      }
    }
    if (names.has(p.name)) throw new ShapeError('spec.properties', 'property names must be unique');
    names.add(p.name);
  }
  if (spec.broker?.podSpec !== undefined && spec.broker.jobSpec !== undefined) {
    throw new ShapeError('spec.broker', 'at most one of podSpec and jobSpec may be set');
  }
  if (spec.nodeSelector !== undefined) {
    try {
      labelSelectorRequirements(spec.nodeSelector);
    } catch (err) {
      throw new ShapeError('spec.nodeSelector', (err as Error).message);
    }
  }
}

function discoverySpec(value: unknown): DiscoverySpec {
  if (value === undefined) throw new ShapeError('spec', 'is required');
  let spec: DiscoverySpec;
  try {
    spec = checkSchema(discoverySpecSchema, value, 'spec') as DiscoverySpec;
  } catch (err) {
    if (err instanceof SchemaError) throw new ShapeError('', err.message);
    throw err;
  }
  discoveryRules(spec);
  return spec;
}

/**
 * A Discovery as written in the config file: metadata (namespace defaulted)
 * and spec; no status. Throws a ShapeError if it cannot be named at all. A
 * Discovery whose spec alone is wrong is returned with the spec as written (an
 * object, or {}) and the reason in `specProblem`: it is still there, invalid,
 * rather than gone.
 */
export function discovery(doc: Fields): { discovery: Discovery; specProblem?: string } {
  if (doc.apiVersion !== API_VERSION) {
    throw new ShapeError('apiVersion', `must be ${API_VERSION} for a Discovery`);
  }
  const meta = objectMeta(doc.metadata);
  const named = { apiVersion: API_VERSION, kind: 'Discovery', metadata: meta } as const;
  try {
    return { discovery: { ...named, spec: discoverySpec(doc.spec) } };
  } catch (err) {
    if (!(err instanceof ShapeError)) throw err;
    const raw = doc.spec;
    const spec = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw : {};
    return { discovery: { ...named, spec: spec as DiscoverySpec }, specProblem: err.message };
  }
}

/** A Secret's or ConfigMap's keys and their values as text. */
export interface KeyValues {
  meta: Meta;
  data: Map<string, string>;
}

function decodeBase64(map: Record<string, string>, field: string, into: Map<string, string>) {
  for (const [key, value] of Object.entries(map)) {
    if (!BASE64.test(value)) throw new ShapeError(`${field}.${key}`, 'must be base64');
    into.set(key, Buffer.from(value, 'base64').toString('utf8'));
  }
}

/** A v1 Secret: data (base64) and stringData, which wins on a shared key as in Kubernetes. */
export function secret(doc: Fields): KeyValues {
  if (doc.apiVersion !== 'v1') throw new ShapeError('apiVersion', 'must be v1 for a Secret');
  const meta = objectMeta(doc.metadata);
  const data = new Map<string, string>();
  if (doc.data !== undefined)
    decodeBase64(stringMap(doc.data, 'data', dataKeyProblem), 'data', data);
  if (doc.stringData !== undefined) {
    for (const [k, v] of Object.entries(stringMap(doc.stringData, 'stringData', dataKeyProblem))) {
      data.set(k, v);
    }
  }
  if (doc.type !== undefined) string(doc.type, 'type');
  return { meta, data };
}

/** A v1 ConfigMap: data, and binaryData (base64) under other keys. */
export function configMap(doc: Fields): KeyValues {
  if (doc.apiVersion !== 'v1') throw new ShapeError('apiVersion', 'must be v1 for a ConfigMap');
  const meta = objectMeta(doc.metadata);
  const data = new Map<string, string>();
  if (doc.data !== undefined) {
    for (const [k, v] of Object.entries(stringMap(doc.data, 'data', dataKeyProblem)))
      data.set(k, v);
  }
  if (doc.binaryData !== undefined) {
    const binary = stringMap(doc.binaryData, 'binaryData', dataKeyProblem);
    for (const key of Object.keys(binary)) {
      if (data.has(key)) throw new ShapeError('binaryData', `key ${quote(key)} is also in data`);
    }
    decodeBase64(binary, 'binaryData', data);
  }
  return { meta, data };
}
