// One source of truth for the API: the hand-written types (src/api/types.ts), the
// schemas (src/api/schema.ts) and the generated CRD files must agree. The type
// checks below run in `npm run typecheck`; the file comparison runs as a test.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';
import { renderCrdFiles } from '../../scripts/generate-crds.ts';
import type * as schema from '../../src/api/schema.ts';
import type * as api from '../../src/api/types.ts';

/**
 * The API server prunes fields a structural schema does not declare, and forbids
 * `additionalProperties: false` next to `properties`; json-schema-to-ts would
 * read such objects as open (`[x: string]: unknown`). Close them for the check.
 */
type Pruned<S> = {
  readonly [K in keyof S]: K extends 'properties'
    ? { readonly [P in keyof S[K]]: Pruned<S[K][P]> }
    : K extends 'items' | 'additionalProperties'
      ? Pruned<S[K]>
      : S[K];
} & (S extends { properties: object } ? { readonly additionalProperties: false } : unknown);

/** The TypeScript type a CRD schema admits. Defaulted fields stay optional: clients may omit them. */
type FromCrdSchema<S> =
  Pruned<S> extends infer P extends JSONSchema
    ? FromSchema<P, { keepDefaultedPropertiesOptional: true }>
    : never;

type MutuallyAssignable<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

type Optional<T, K extends keyof T> = object extends Pick<T, K> ? true : false;

/**
 * The paths where A (types.ts) and B (schema) disagree, or never. Mutual
 * assignability alone would miss an optional field present on one side only.
 */
type Drift<A, B, P extends string = ''> = [A, B] extends [
  readonly (infer EA)[],
  readonly (infer EB)[],
]
  ? Drift<EA, EB, `${P}[]`>
  : [A, B] extends [object, object]
    ? | `${P}.${Exclude<keyof A, keyof B> & string} (only in types.ts)`
      | `${P}.${Exclude<keyof B, keyof A> & string} (only in the schema)`
      | {
          [K in keyof A & keyof B & string]:
            | (Optional<A, K> extends Optional<B, K> ? never : `${P}.${K} (optional on one side)`)
            | Drift<Exclude<A[K], undefined>, Exclude<B[K], undefined>, `${P}.${K}`>;
        }[keyof A & keyof B & string]
      | (MutuallyAssignable<A, B> extends true ? never : P)
    : MutuallyAssignable<A, B> extends true
      ? never
      : P;

/** `true` when the types agree; otherwise an object type naming the paths, which tsc prints. */
type Agree<A, B> = [Drift<A, B>] extends [never] ? true : { drift: Drift<A, B> };

// Each `true` fails to compile, naming the paths, when a type and its schema drift.
export const typesAgreeWithSchemas: {
  discoverySpec: Agree<api.DiscoverySpec, FromCrdSchema<typeof schema.discoverySpecSchema>>;
  discoveryStatus: Agree<api.DiscoveryStatus, FromCrdSchema<typeof schema.discoveryStatusSchema>>;
  deviceSpec: Agree<api.DeviceSpec, FromCrdSchema<typeof schema.deviceSpecSchema>>;
  deviceStatus: Agree<api.DeviceStatus, FromCrdSchema<typeof schema.deviceStatusSchema>>;
  deviceSliceSpec: Agree<api.DeviceSliceSpec, FromCrdSchema<typeof schema.deviceSliceSpecSchema>>;
} = {
  discoverySpec: true,
  discoveryStatus: true,
  deviceSpec: true,
  deviceStatus: true,
  deviceSliceSpec: true,
};

describe('the CRD manifests', () => {
  it('are what scripts/generate-crds.ts writes from the current schemas', async () => {
    const rendered = await renderCrdFiles();
    assert.equal(rendered.size, 3);
    for (const [file, text] of rendered) {
      const onDisk = await readFile(file, 'utf8').catch(() => '(missing)');
      assert.equal(
        onDisk,
        text,
        `${path.basename(file)} is out of date: run node scripts/generate-crds.ts`,
      );
    }
  });
});
