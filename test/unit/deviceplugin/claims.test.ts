import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareUsage,
  formatClaim,
  heldKey,
  mayUse,
  parseClaim,
  preferredIds,
} from '../../../src/deviceplugin/claims.ts';

const R = 'edgebridge.io/cam';
const ANY = 'edgebridge.io/cams';

describe('slot claims in a Device status.usage', () => {
  it('round-trips a claim with and without its pod', () => {
    for (const claim of [
      { node: 'node-a', resource: R },
      { node: 'node-a', resource: R, pod: 'default/reader' },
    ]) {
      assert.deepEqual(parseClaim(formatClaim(claim)), claim);
    }
    assert.equal(formatClaim({ node: 'n', resource: R, pod: 'ns/p' }), 'n:edgebridge.io/cam:ns/p');
  });

  it('reads a value it did not write as no claim', () => {
    for (const value of ['', 'node-a', ':x', 'a:b:', 'a:b:c:d']) {
      assert.equal(parseClaim(value), undefined, value);
    }
  });

  it('lets a node use a free slot, or its own through the same resource', () => {
    const usage = { '0': 'node-a:edgebridge.io/cam', '1': 'node-b:edgebridge.io/cam' };
    assert.equal(mayUse(usage, 2, 'node-a', R), true);
    assert.equal(mayUse(usage, 0, 'node-a', R), true);
    assert.equal(mayUse(usage, 1, 'node-a', R), false, "another node's slot");
    assert.equal(mayUse(usage, 0, 'node-a', ANY), false, 'its own slot through the other resource');
    assert.equal(mayUse({ '0': 'garbage' }, 0, 'node-a', R), false, 'an unreadable value');
  });

  it("finds this node's claims that no pod holds, and names the pods of the others", () => {
    const usage = {
      '0': 'node-a:edgebridge.io/cam',
      '1': 'node-a:edgebridge.io/cams:ns/old',
      '2': 'node-b:edgebridge.io/cam',
      '3': 'node-a:edgebridge.io/cam:ns/kept',
    };
    const held = new Map([
      [heldKey(ANY, 'cam-1'), 'ns/new'],
      [heldKey(R, 'cam-3'), 'ns/kept'],
    ]);
    assert.deepEqual(compareUsage(usage, 'cam', 'node-a', held), {
      unheld: ['0'],
      named: { '1': 'node-a:edgebridge.io/cams:ns/new' },
    });
  });

  it('prefers what the kubelet must include, then slots free across the cluster', () => {
    const free = (id: string) => id !== 'a' && id !== 'b';
    assert.deepEqual(preferredIds(['a', 'b', 'c', 'd'], [], 2, free), ['c', 'd']);
    assert.deepEqual(preferredIds(['a', 'b', 'c', 'd'], ['b'], 2, free), ['b', 'c']);
    assert.deepEqual(preferredIds(['a', 'b', 'c'], [], 3, free), ['c', 'a', 'b']);
  });
});
