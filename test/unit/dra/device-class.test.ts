import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DeviceClassNameError, deviceClassFor } from '../../../src/dra/device-class.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../../../manifests/samples/dra.yaml');

describe('a Discovery’s DeviceClass', () => {
  it('is what manifests/samples/dra.yaml ships', () => {
    const docs = parseAllDocuments(readFileSync(SAMPLE, 'utf8')).map(
      (d) => d.toJS() as { kind: string },
    );
    assert.deepEqual(
      docs.find((d) => d.kind === 'DeviceClass'),
      deviceClassFor('default', 'demo'),
    );
  });

  it('refuses names that are not a namespace and an object name (they go into CEL)', () => {
    assert.throws(() => deviceClassFor('default', 'x" || true || "'), DeviceClassNameError);
    assert.throws(() => deviceClassFor('Default', 'demo'), DeviceClassNameError);
    assert.throws(() => deviceClassFor('default', 'd'.repeat(65)), DeviceClassNameError);
  });
});
