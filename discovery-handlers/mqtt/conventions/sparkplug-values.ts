// Sparkplug B metric values <-> JSON, by the spec's datatypes: signed
// integers travel as unsigned protobuf fields, 64-bit ones as decimal strings
// from protobufjs, arrays packed little-endian in bytes_value (3.0, 6.4.17).

/** The value fields a Metric and a DataSet element share, as protobufjs's toObject gives them (`value` names the set field). */
interface ValueObject {
  value?: string;
  int_value?: number;
  long_value?: string;
  float_value?: number;
  double_value?: number;
  boolean_value?: boolean;
  string_value?: string;
}

/** A Payload.Metric as protobufjs's toObject gives it (longs as strings). */
export interface MetricObject extends ValueObject {
  name?: string;
  alias?: string;
  timestamp?: string;
  datatype?: number;
  is_historical?: boolean;
  is_null?: boolean;
  bytes_value?: Uint8Array;
  dataset_value?: DataSetObject;
  template_value?: TemplateObject;
}

interface DataSetObject {
  columns?: string[];
  types?: number[];
  rows?: { elements?: ValueObject[] }[];
}

interface TemplateObject {
  version?: string;
  template_ref?: string;
  is_definition?: boolean;
  metrics?: MetricObject[];
}

export const DataType = {
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
  Int8Array: 22,
  Int16Array: 23,
  Int32Array: 24,
  Int64Array: 25,
  UInt8Array: 26,
  UInt16Array: 27,
  UInt32Array: 28,
  UInt64Array: 29,
  FloatArray: 30,
  DoubleArray: 31,
  BooleanArray: 32,
  StringArray: 33,
  DateTimeArray: 34,
} as const;

/** Templates inside templates: deeper than this is not followed. */
const MAX_TEMPLATE_DEPTH = 4;

/** The metric's value as JSON; null for an explicit null; undefined when it carries none we can read. */
export function metricValue(m: MetricObject, datatype: number, depth = 0): unknown {
  if (m.is_null === true) return null;
  switch (m.value) {
    case 'int_value':
      return m.int_value === undefined ? undefined : fromInt(m.int_value, datatype);
    case 'long_value':
      return m.long_value === undefined ? undefined : fromLong(m.long_value, datatype);
    case 'float_value':
      return finite(m.float_value);
    case 'double_value':
      return finite(m.double_value);
    case 'boolean_value':
      return m.boolean_value;
    case 'string_value':
      return m.string_value;
    case 'bytes_value':
      return m.bytes_value === undefined
        ? undefined
        : fromBytes(Buffer.from(m.bytes_value), datatype);
    case 'dataset_value':
      return m.dataset_value === undefined ? undefined : fromDataSet(m.dataset_value);
    case 'template_value':
      return m.template_value === undefined || depth >= MAX_TEMPLATE_DEPTH
        ? undefined
        : fromTemplate(m.template_value, depth + 1);
    default:
      return undefined;
  }
}

/**
 * The Metric fields (`int_value`, `long_value`, ...) carrying `value` as
 * `datatype`, for a command; undefined when the value does not fit the type
 * or the type is not one a command can carry as JSON.
 */
export function toMetricFields(
  datatype: number,
  value: unknown,
): Record<string, unknown> | undefined {
  switch (datatype) {
    case DataType.Int8:
    case DataType.Int16:
    case DataType.Int32:
    case DataType.UInt8:
    case DataType.UInt16:
    case DataType.UInt32: {
      const range = INT_RANGES[datatype];
      if (range === undefined || typeof value !== 'number' || !Number.isInteger(value))
        return undefined;
      if (value < range[0] || value > range[1]) return undefined;
      // Signed values travel as their two's complement in the uint32 field.
      return { int_value: value >>> 0 };
    }
    case DataType.Int64:
    case DataType.UInt64:
    case DataType.DateTime: {
      if (typeof value !== 'number' && typeof value !== 'string') return undefined;
      const big = toBigInt(value);
      if (big === undefined) return undefined;
      const signed = datatype === DataType.Int64;
      if (signed ? BigInt.asIntN(64, big) !== big : BigInt.asUintN(64, big) !== big)
        return undefined;
      return { long_value: BigInt.asUintN(64, big).toString() };
    }
    case DataType.Float:
      return typeof value === 'number' && Number.isFinite(value)
        ? { float_value: value }
        : undefined;
    case DataType.Double:
      return typeof value === 'number' && Number.isFinite(value)
        ? { double_value: value }
        : undefined;
    case DataType.Boolean:
      return typeof value === 'boolean' ? { boolean_value: value } : undefined;
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      return typeof value === 'string' ? { string_value: value } : undefined;
    default:
      return undefined;
  }
}

const INT_RANGES: Record<number, [number, number]> = {
  [DataType.Int8]: [-128, 127],
  [DataType.Int16]: [-32768, 32767],
  [DataType.Int32]: [-2147483648, 2147483647],
  [DataType.UInt8]: [0, 255],
  [DataType.UInt16]: [0, 65535],
  [DataType.UInt32]: [0, 4294967295],
};

function fromInt(v: number, datatype: number): number {
  switch (datatype) {
    case DataType.Int8:
      return (v << 24) >> 24;
    case DataType.Int16:
      return (v << 16) >> 16;
    case DataType.Int32:
      return v | 0;
    default:
      return v >>> 0;
  }
}

/** A 64-bit value as a number when it fits exactly, else as its decimal string. */
function fromLong(v: string, datatype: number): number | string | undefined {
  const big = toBigInt(v);
  if (big === undefined) return undefined;
  return bigToJson(datatype === DataType.Int64 ? BigInt.asIntN(64, big) : big);
}

/** BigInt(v), or undefined where v is not an integer (BigInt throws). */
function toBigInt(v: number | string): bigint | undefined {
  try {
    return BigInt(v);
  } catch {
    return undefined;
  }
}

function bigToJson(big: bigint): number | string {
  const n = Number(big);
  return Number.isSafeInteger(n) ? n : big.toString();
}

/** JSON has no NaN or Infinity. */
function finite(v: number | undefined): number | null | undefined {
  if (v === undefined) return undefined;
  return Number.isFinite(v) ? v : null;
}

/** Bytes, File: base64; the array types: unpacked as the spec packs them. */
function fromBytes(b: Buffer, datatype: number): unknown {
  const fixed = (width: number, read: (offset: number) => unknown): unknown[] | undefined => {
    if (b.length % width !== 0) return undefined;
    return Array.from({ length: b.length / width }, (_, i) => read(i * width));
  };
  switch (datatype) {
    case DataType.Int8Array:
      return fixed(1, (o) => b.readInt8(o));
    case DataType.UInt8Array:
      return fixed(1, (o) => b.readUInt8(o));
    case DataType.Int16Array:
      return fixed(2, (o) => b.readInt16LE(o));
    case DataType.UInt16Array:
      return fixed(2, (o) => b.readUInt16LE(o));
    case DataType.Int32Array:
      return fixed(4, (o) => b.readInt32LE(o));
    case DataType.UInt32Array:
      return fixed(4, (o) => b.readUInt32LE(o));
    case DataType.Int64Array:
    case DataType.DateTimeArray:
      return fixed(8, (o) => bigToJson(b.readBigInt64LE(o)));
    case DataType.UInt64Array:
      return fixed(8, (o) => bigToJson(b.readBigUInt64LE(o)));
    case DataType.FloatArray:
      return fixed(4, (o) => finite(b.readFloatLE(o)));
    case DataType.DoubleArray:
      return fixed(8, (o) => finite(b.readDoubleLE(o)));
    case DataType.BooleanArray: {
      // A little-endian element count, then the bits, most significant first.
      if (b.length < 4) return undefined;
      const count = b.readUInt32LE(0);
      if (count > (b.length - 4) * 8) return undefined;
      return Array.from(
        { length: count },
        (_, i) => ((b[4 + (i >> 3)] ?? 0) & (0x80 >> (i & 7))) !== 0,
      );
    }
    case DataType.StringArray: {
      const parts = b.toString('utf8').split('\0');
      // Each string ends in NUL, so the last split part is the empty rest.
      if (parts.pop() !== '') return undefined;
      return parts;
    }
    default:
      return b.toString('base64');
  }
}

function fromDataSet(ds: DataSetObject): unknown {
  const types = ds.types ?? [];
  return {
    columns: ds.columns ?? [],
    rows: (ds.rows ?? []).map((row) =>
      (row.elements ?? []).map((e, i) => metricValue(e as MetricObject, types[i] ?? 0) ?? null),
    ),
  };
}

function fromTemplate(t: TemplateObject, depth: number): unknown {
  const metrics: Record<string, unknown> = {};
  for (const m of t.metrics ?? []) {
    if (typeof m.name === 'string')
      metrics[m.name] = metricValue(m, m.datatype ?? 0, depth) ?? null;
  }
  return {
    ...(t.template_ref !== undefined ? { template_ref: t.template_ref } : {}),
    ...(t.version !== undefined ? { version: t.version } : {}),
    metrics,
  };
}
