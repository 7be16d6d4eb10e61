import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  boundedName,
  resourceName,
  slotId,
  socketName,
} from '../../../src/deviceplugin/resource-names.ts';

// What the kubelet's IsExtendedResourceName accepts: a qualified name after "requests.".
const QUALIFIED = /^[a-z0-9.-]{1,253}\/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

describe('device plugin resource names', () => {
  it('names a short Device as it is', () => {
    assert.equal(resourceName('cams-0123456789'), 'edgebridge.io/cams-0123456789');
  });

  it('shortens a long Device name with a hash, to a valid extended-resource name', () => {
    const long = `${'a'.repeat(200)}-0123456789`;
    const name = resourceName(long);
    assert.match(`requests.${name}`, QUALIFIED);
    assert.equal(name.length, 'edgebridge.io/'.length + 63);
    assert.ok(name.startsWith('edgebridge.io/aaaa'));
  });

  it('is deterministic, and tells apart names that share a long head', () => {
    const head = 'b'.repeat(80);
    assert.equal(resourceName(`${head}-x`), resourceName(`${head}-x`));
    assert.notEqual(resourceName(`${head}-x`), resourceName(`${head}-y`));
  });

  it('never ends the shortened head on a dash or dot', () => {
    const name = boundedName(`${'c'.repeat(51)}-.-${'d'.repeat(40)}`);
    assert.match(name, /^c+-[0-9a-f]{10}$/);
  });

  it('gives slot ids of at most 63 characters, unique per slot', () => {
    const device = `${'e'.repeat(120)}-0123456789`;
    const ids = [0, 1, 2].map((slot) => slotId(device, slot));
    assert.equal(new Set(ids).size, 3);
    for (const id of ids) assert.ok(id.length <= 63);
    assert.equal(slotId('cam-1', 2), 'cam-1-2');
  });

  it('names the socket after the resource', () => {
    assert.equal(socketName('edgebridge.io/cams'), 'edgebridge-cams.sock');
  });
});
