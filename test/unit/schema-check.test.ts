import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSchema, SchemaError, type SchemaNode } from '../../src/util/schema-check.ts';

const source: SchemaNode = {
  type: 'object',
  'x-exactly-one-of': ['value', 'file'],
  properties: { value: { type: 'string' }, file: { type: 'string' } },
};

function failsWith(schema: SchemaNode, value: unknown, field: string, message: RegExp): void {
  assert.throws(
    () => checkSchema(schema, value, field),
    (err: unknown) => {
      assert.ok(err instanceof SchemaError, String(err));
      assert.match(err.message, message);
      return true;
    },
  );
}

describe('checkSchema', () => {
  it('x-exactly-one-of: one of the listed fields, not none and not two', () => {
    assert.deepEqual(checkSchema(source, { file: '/f' }, 'password'), { file: '/f' });
    failsWith(source, {}, 'password', /^password: needs exactly one of value, file$/);
    failsWith(source, { value: 'v', file: '/f' }, 'password', /^password: needs exactly one of/);
  });

  it('a root field of "" names fields bare, and the root by its reason alone', () => {
    const schema: SchemaNode = { type: 'object', properties: { a: { type: 'integer' } } };
    failsWith(schema, { a: 'x' }, '', /^a: must be an integer$/);
    failsWith(schema, [], '', /^must be an object$/);
    failsWith(schema, { b: 1 }, '', /^b: unknown field \(known: a\)$/);
  });

  it('a defaulted object gets the defaults of its own fields', () => {
    const schema: SchemaNode = {
      type: 'object',
      properties: {
        spool: {
          type: 'object',
          properties: { dir: { type: 'string', default: 'spool' } },
          default: {},
        },
      },
    };
    assert.deepEqual(checkSchema(schema, {}, 'config'), { spool: { dir: 'spool' } });
  });
});
