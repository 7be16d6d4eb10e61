import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceName, discoveryPart, discoveryPartOf, sliceName } from '../../src/api/names.ts';

describe('Device names', () => {
  it('are stable, and differ per node only for local devices', () => {
    assert.equal(deviceName('cams', 'a', true, 'n1'), deviceName('cams', 'a', true, 'n2'));
    assert.notEqual(deviceName('usb', 'a', false, 'n1'), deviceName('usb', 'a', false, 'n2'));
    assert.match(deviceName('cams', 'a', true, 'n1'), /^cams-[0-9a-f]{10}$/);
  });

  it('give back the Discovery they were made from', () => {
    for (const discovery of ['cams', 'cams-abcdef0123', 'a', 'x'.repeat(300)]) {
      const name = deviceName(discovery, 'dev', true, 'n1');
      assert.ok(name.length <= 253);
      assert.equal(discoveryPartOf(name), discoveryPart(discovery));
    }
  });

  it('tell names that no Discovery made', () => {
    for (const name of ['cams', 'cams-123', 'cams-ABCDEF0123', '-abcdef0123', 'cams-abcdef01234'])
      assert.equal(discoveryPartOf(name), undefined, name);
  });
});

describe('sliceName', () => {
  it('is <discovery>-<node>-<n> while that fits', () => {
    assert.equal(sliceName('cams', 'edge-1', 0), 'cams-edge-1-0');
    assert.equal(sliceName('cams', 'edge-1', 12), 'cams-edge-1-12');
  });

  it('cuts long names to a DNS subdomain, with a hash that keeps them apart', () => {
    const long = 'd'.repeat(200);
    const a = sliceName(long, `${'n'.repeat(200)}a`, 3);
    const b = sliceName(long, `${'n'.repeat(200)}b`, 3);
    assert.notEqual(a, b);
    for (const name of [a, b]) {
      assert.ok(name.length <= 253, `${name.length} characters`);
      assert.match(name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      assert.match(name, /-[0-9a-f]{10}-3$/);
    }
    assert.equal(a, sliceName(long, `${'n'.repeat(200)}a`, 3));
  });
});
