// Whole-number flags (ports, limits) checked by the project's schema module, so
// that a flag and a config file field refuse a bad number in the same words.
import { checkSchema, SchemaError, type SchemaNode } from '../util/schema-check.ts';
import { UsageError } from './errors.ts';

const DIGITS: SchemaNode = { type: 'string', pattern: '^-?[0-9]+$', 'x-hint': 'a whole number' };

/** Bounds of an integer flag, and what it is in words for the message. */
export interface IntegerFlag {
  minimum: number;
  maximum: number;
  /** e.g. "a port number; 0 picks a free one". */
  what: string;
}

/** The flag's value as an integer within its bounds; a UsageError naming the flag otherwise. */
export function integerFlag(flag: string, text: string, spec: IntegerFlag): number {
  try {
    checkSchema(DIGITS, text, `--${flag}`);
    return checkSchema(
      { type: 'integer', minimum: spec.minimum, maximum: spec.maximum },
      Number(text),
      `--${flag}`,
    ) as number;
  } catch (err) {
    if (err instanceof SchemaError) throw new UsageError(`${err.message} (${spec.what})`);
    throw err;
  }
}
