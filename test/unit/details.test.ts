import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateDetails, type DetailsSchema } from '../../discovery-handlers/details.ts';
import { InvalidDetailsError } from '../../discovery-handlers/handler.ts';

const schema: DetailsSchema<object> = {
  type: 'object',
  properties: {
    serviceTypes: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: '^_[a-z]+$', 'x-hint': 'a service type' },
    },
    env: {
      type: 'object',
      propertyNames: { type: 'string', pattern: '^[A-Z]+$' },
      additionalProperties: { type: 'string' },
    },
    timeoutSeconds: { type: 'integer', minimum: 1, default: 2 },
  },
};

describe('validateDetails', () => {
  it('fills defaults and treats absent details as {}', () => {
    assert.deepEqual(validateDetails(schema, undefined), { timeoutSeconds: 2 });
    assert.deepEqual(validateDetails(schema, null), { timeoutSeconds: 2 });
  });

  it('names the field, the item and the rule in the message', () => {
    const cases: [unknown, RegExp][] = [
      [{ serviceTypes: ['_a', '_b', 'X'] }, /^details\.serviceTypes\[2\]: must be a service type/],
      [{ serviceTypes: [] }, /^details\.serviceTypes: must have at least 1 items$/],
      [{ env: { lower: 'x' } }, /^details\.env: key "lower" must match \^\[A-Z\]\+\$$/],
      [{ timeoutSeconds: 0 }, /^details\.timeoutSeconds: must be at least 1$/],
      [
        { colour: 'red' },
        /^details\.colour: unknown field \(known: serviceTypes, env, timeoutSeconds\)$/,
      ],
      [{ ['k'.repeat(1000)]: 1 }, /^details\.k{64}\.\.\.: unknown field \(known: /],
      ['text', /^details: must be an object$/],
      [{ serviceTypes: 'x' }, /^details\.serviceTypes: must be an array$/],
      [{ timeoutSeconds: 1.5 }, /^details\.timeoutSeconds: must be an integer$/],
    ];
    for (const [details, message] of cases) {
      assert.throws(
        () => validateDetails(schema, details),
        (err: unknown) => err instanceof InvalidDetailsError && message.test(err.message),
        String(message),
      );
    }
  });
});
