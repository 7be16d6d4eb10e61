import { validateDetails, type DetailsSchema } from '../details.ts';
import { InvalidDetailsError } from '../handler.ts';
import { globs, normalHex, type UsbFilter } from './filter.ts';
import { parseUdevRule, UdevRuleError } from './udev-rules.ts';

/** spec.handler.details of a usb Discovery, as written. */
export interface UsbDetailsInput {
  /** udev match rules as written for Akri; a device matching any of them. */
  udevRules?: string[];
  /** Hex, e.g. `046d` or `0x046D`. */
  vendorIds?: string[];
  productIds?: string[];
  /** Hex; bDeviceClass or any interface's class. */
  deviceClasses?: string[];
  serialNumbers?: string[];
  /** udev glob patterns. */
  manufacturers?: string[];
  products?: string[];
  /** Kernel port paths, e.g. `1-1.2`. */
  portPaths?: string[];
}

const list = (item: DetailsSchema<string>): DetailsSchema<string[]> => ({
  type: 'array',
  minItems: 1,
  maxItems: 256,
  items: item,
});
const hex = (digits: number): DetailsSchema<string> => ({
  type: 'string',
  pattern: `^(0[xX])?[0-9a-fA-F]{1,${digits}}$`,
  'x-hint': `a hex number of at most ${digits} digits, e.g. ${digits === 4 ? '046d' : '0e'}`,
});
const text = (max: number): DetailsSchema<string> => ({
  type: 'string',
  minLength: 1,
  maxLength: max,
});

const schema: DetailsSchema<UsbDetailsInput> = {
  type: 'object',
  properties: {
    udevRules: { ...list(text(4096)), maxItems: 64 },
    vendorIds: list(hex(4)),
    productIds: list(hex(4)),
    deviceClasses: list(hex(2)),
    serialNumbers: list(text(256)),
    manufacturers: list(text(256)),
    products: list(text(256)),
    portPaths: list({
      type: 'string',
      pattern: '^[0-9]{1,3}-[0-9]{1,3}(\\.[0-9]{1,3}){0,6}$',
      'x-hint': 'a port path such as 1-1.2',
    }),
  },
};

/** Checks usb details and compiles them; throws an InvalidDetailsError naming the field. */
export function parseUsbDetails(details: unknown): UsbFilter {
  const d = validateDetails(schema, details);
  const udevRules = (d.udevRules ?? []).map((rule, i) => {
    try {
      return parseUdevRule(rule);
    } catch (err) {
      if (err instanceof UdevRuleError)
        throw new InvalidDetailsError(`details.udevRules[${i}]: ${err.message}`);
      throw err;
    }
  });
  const set = (v: string[] | undefined, f: (s: string) => string): Set<string> | undefined =>
    v === undefined ? undefined : new Set(v.map(f));
  const optional = <K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } =>
    (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };
  return {
    udevRules,
    ...optional(
      'vendorIds',
      set(d.vendorIds, (s) => normalHex(s, 4)),
    ),
    ...optional(
      'productIds',
      set(d.productIds, (s) => normalHex(s, 4)),
    ),
    ...optional(
      'deviceClasses',
      set(d.deviceClasses, (s) => normalHex(s, 2)),
    ),
    ...optional(
      'serialNumbers',
      set(d.serialNumbers, (s) => s),
    ),
    ...optional('manufacturers', d.manufacturers && checkedGlobs(d.manufacturers, 'manufacturers')),
    ...optional('products', d.products && checkedGlobs(d.products, 'products')),
    ...optional(
      'portPaths',
      set(d.portPaths, (s) => s),
    ),
  };
}

function checkedGlobs(patterns: string[], field: string): ReturnType<typeof globs> {
  try {
    return globs(patterns);
  } catch (err) {
    throw new InvalidDetailsError(`details.${field}: bad pattern (${(err as Error).message})`);
  }
}
