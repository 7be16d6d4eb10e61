import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  RegistryConflictError,
  RegistryRejectedError,
  RegistryUnavailableError,
  isRetryable,
} from '../../../src/registry/errors.ts';
import { apiStatus, classifyApiError } from '../../../src/registry/kubernetes/api-errors.ts';
import {
  KubeApiError,
  KubeTransportError,
} from '../../../src/registry/kubernetes/client/errors.ts';
import { isExpired } from '../../../src/registry/kubernetes/client/informer.ts';
import { apiError } from '../../../src/registry/kubernetes/client/kube-client.ts';

const status = (code: number, reason: string, message: string): Buffer =>
  Buffer.from(
    JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }),
  );

describe('Kubernetes API errors', () => {
  it('carry the HTTP status and the Status reason and message', () => {
    const err = apiError(404, status(404, 'NotFound', 'devices.edgebridge.io "x" not found'));
    assert.equal(err.status, 404);
    assert.equal(err.reason, 'NotFound');
    assert.equal(err.message, 'devices.edgebridge.io "x" not found');
    assert.equal(err.code, 'EDGEBRIDGE_KUBE_API');
    assert.equal(apiStatus(err), 404);
    const plain = apiError(502, Buffer.from('<html>bad gateway</html>\n'));
    assert.equal(plain.reason, undefined);
    assert.equal(plain.message, '<html>bad gateway</html>');
  });

  it('classify 401/403/429/5xx and transport failures as retryable, 409 as conflict, other codes as terminal', () => {
    for (const code of [401, 403, 429, 500, 503]) {
      const e = classifyApiError(new KubeApiError(code, undefined, 'm'), 'apply device ns/x');
      assert.ok(e instanceof RegistryUnavailableError, `HTTP ${code}`);
      assert.ok(isRetryable(e));
      assert.match(e.message, new RegExp(`^apply device ns/x: HTTP ${code}: m$`));
    }
    const transport = classifyApiError(new KubeTransportError('connect ECONNREFUSED'), 'list');
    assert.ok(transport instanceof RegistryUnavailableError);
    assert.equal(apiStatus(new KubeTransportError('x')), undefined);
    assert.ok(
      classifyApiError(new KubeApiError(409, 'Conflict', 'm'), 'x') instanceof
        RegistryConflictError,
    );
    for (const code of [400, 404, 422]) {
      const e = classifyApiError(new KubeApiError(code, 'Invalid', 'spec.x: bad'), 'apply');
      assert.ok(e instanceof RegistryRejectedError, `HTTP ${code}`);
      assert.equal(e.status, code);
      assert.ok(!isRetryable(e));
    }
  });

  it('recognise an expired resource version (410 Gone) as a reason to list again', () => {
    assert.ok(isExpired(apiError(410, status(410, 'Expired', 'too old resource version: 1 (52)'))));
    assert.ok(!isExpired(new KubeApiError(500, 'InternalError', 'x')));
    assert.ok(!isExpired(new KubeTransportError('x')));
  });
});
