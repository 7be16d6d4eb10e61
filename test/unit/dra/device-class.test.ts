import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DeviceClassNameError, deviceClassFor } from '../../../src/dra/device-class.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../../../manifests/samples/dra.yaml');

describe('a Discovery’s DeviceClass', () => {
  it('is the one manifests/samples/dra.yaml’s claim asks for', () => {
    const docs = parseAllDocuments(readFileSync(SAMPLE, 'utf8')).map(
      (d) => d.toJS() as { kind: string; spec: unknown },
    );
    const template = docs.find((d) => d.kind === 'ResourceClaimTemplate') as
      | { spec: { spec: { devices: { requests: { exactly: { deviceClassName: string } }[] } } } }
      | undefined;
    assert.equal(
      template?.spec.spec.devices.requests[0]?.exactly.deviceClassName,
      deviceClassFor('default', 'demo').metadata.name,
    );
  });

  it('is labelled with its Discovery and selects the Discovery’s devices by attribute', () => {
    assert.deepEqual(deviceClassFor('site', 'cams'), {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'DeviceClass',
      metadata: {
        name: 'cams.site.edgebridge.io',
        labels: { 'edgebridge.io/discovery': 'cams', 'edgebridge.io/namespace': 'site' },
      },
      spec: {
        selectors: [
          {
            cel: {
              expression:
                'device.driver == "edgebridge.io" && device.attributes["edgebridge.io"].namespace == "site" && device.attributes["edgebridge.io"].discovery == "cams"',
            },
          },
        ],
      },
    });
  });

  it('refuses names that are not a namespace and an object name (they go into CEL)', () => {
    assert.throws(() => deviceClassFor('default', 'x" || true || "'), DeviceClassNameError);
    assert.throws(() => deviceClassFor('Default', 'demo'), DeviceClassNameError);
    // A label value holds 63 characters (an attribute 64).
    assert.throws(() => deviceClassFor('default', 'd'.repeat(64)), DeviceClassNameError);
    assert.doesNotThrow(() => deviceClassFor('default', 'd'.repeat(63)));
  });
});
