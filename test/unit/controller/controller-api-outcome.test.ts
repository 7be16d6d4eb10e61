import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { outcomeOf } from '../../../src/controller/controller-api.ts';
import {
  KubeApiError,
  KubeTransportError,
} from '../../../src/registry/kubernetes/client/errors.ts';

describe("the controller's write limit", () => {
  it('takes 429, 5xx and transport failures (timeouts) as overload', () => {
    for (const status of [429, 500, 503, 504])
      assert.equal(outcomeOf(new KubeApiError(status, undefined, 'x')), 'overloaded', `${status}`);
    assert.equal(outcomeOf(new KubeTransportError('no answer in 30000 ms')), 'overloaded');
  });

  it('does not slow down for answers about the object (conflict, not found, invalid) or a shutdown', () => {
    for (const status of [404, 409, 422, 400, 403])
      assert.equal(outcomeOf(new KubeApiError(status, undefined, 'x')), 'failed', `${status}`);
    assert.equal(outcomeOf(new Error('aborted')), 'failed');
  });
});
