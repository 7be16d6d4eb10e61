import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deviceName, discoveryPart, discoveryPartOf } from '../../src/api/names.ts';

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
