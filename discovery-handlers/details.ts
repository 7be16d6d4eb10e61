import { checkSchema, SchemaError, type SchemaNode } from '../src/util/schema-check.ts';
import { InvalidDetailsError } from './handler.ts';

export type { SchemaNode };

/** A schema that admits exactly the values of type T (its author keeps the two in step). */
export type DetailsSchema<T> = SchemaNode & { readonly __admits?: T };

/**
 * The one way handlers validate their details: `details` checked against
 * `schema` (defaults filled in), or an InvalidDetailsError whose message names
 * the field, e.g. `details.serviceTypes[2]: must be ...`.
 */
export function validateDetails<T>(schema: DetailsSchema<T>, details: unknown): T {
  try {
    return checkSchema(schema, details ?? {}, 'details') as T;
  } catch (err) {
    if (err instanceof SchemaError) throw new InvalidDetailsError(err.message);
    throw err;
  }
}
