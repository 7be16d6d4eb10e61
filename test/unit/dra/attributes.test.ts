import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attributesOf, identifier } from '../../../src/dra/attributes.ts';
import type { NodeDevice } from '../../../src/dra/node-device.ts';

function camera(
  properties: Record<string, string>,
  labels: Record<string, string> = {},
): NodeDevice {
  return {
    namespace: 'site-a',
    name: 'cams-0a1b2c3d4e',
    labels: { 'edgebridge.io/discovery': 'cams', 'edgebridge.io/handler': 'onvif', ...labels },
    spec: { discovery: 'cams', handler: 'onvif', shared: true, id: 'urn:uuid:1', properties },
    node: {},
  };
}

describe('DRA attributes of a device', () => {
  it('names the device, its Discovery and handler, and the well-known properties in the driver domain', () => {
    const { attributes, skipped } = attributesOf(
      camera({ ONVIF_MANUFACTURER: 'Acme', ONVIF_MODEL: 'X100', ONVIF_SERIAL: 'S1' }),
    );
    assert.deepEqual(skipped, []);
    assert.deepEqual(attributes.namespace, { string: 'site-a' });
    assert.deepEqual(attributes.discovery, { string: 'cams' });
    assert.deepEqual(attributes.device, { string: 'cams-0a1b2c3d4e' });
    assert.deepEqual(attributes.handler, { string: 'onvif' });
    assert.deepEqual(attributes.shared, { bool: true });
    assert.deepEqual(attributes.manufacturer, { string: 'Acme' });
    assert.deepEqual(attributes.model, { string: 'X100' });
    assert.deepEqual(attributes.serial, { string: 'S1' });
    assert.deepEqual(attributes['property.edgebridge.io/ONVIF_MODEL'], { string: 'X100' });
  });

  it('always sets the well-known attributes, "" when the device has none, so that selectors on them never fail', () => {
    const { attributes, skipped } = attributesOf(camera({}));
    for (const name of ['manufacturer', 'model', 'vendorId', 'productId', 'serial'])
      assert.deepEqual(attributes[name], { string: '' }, name);
    assert.deepEqual(skipped, []);
  });

  it('keeps a label prefix as the attribute domain and leaves out the driver’s own labels', () => {
    const { attributes } = attributesOf(
      camera({}, { 'onvif.edgebridge.io/manufacturer': 'Acme', zone: 'north-door' }),
    );
    assert.deepEqual(attributes['onvif.edgebridge.io/manufacturer'], { string: 'Acme' });
    assert.deepEqual(attributes['label.edgebridge.io/zone'], { string: 'north-door' });
    assert.equal(attributes['edgebridge.io/discovery'], undefined);
  });

  it('leaves out values longer than 64 characters, with control characters, or not strings, and says why', () => {
    const long = 'x'.repeat(10 * 1024);
    const { attributes, skipped } = attributesOf(
      camera({
        ONVIF_MANUFACTURER: long,
        ONVIF_MODEL: 'bad\u0000model',
        ODD: 42 as unknown as string,
        FINE: 'ok',
      }),
    );
    assert.deepEqual(attributes.manufacturer, { string: '' });
    assert.deepEqual(attributes.model, { string: '' });
    assert.equal(attributes['property.edgebridge.io/ODD'], undefined);
    assert.deepEqual(attributes['property.edgebridge.io/FINE'], { string: 'ok' });
    assert.ok(
      skipped.some((s) => s.startsWith('property ONVIF_MANUFACTURER: value longer than 64')),
    );
    assert.ok(skipped.some((s) => s.startsWith('property ONVIF_MODEL: value contains control')));
    assert.ok(skipped.some((s) => s.startsWith('property ODD: value is not a string')));
    for (const s of skipped) assert.ok(s.length < 200, 'a reason never carries the whole value');
  });

  it('makes property names C identifiers and drops names that cannot be one', () => {
    const { attributes, skipped } = attributesOf(
      camera({ 'mdns.txt-path': '/x', '9LIVES': 'y', [`K${'a'.repeat(5000)}`]: 'z', '': 'e' }),
    );
    assert.deepEqual(attributes['property.edgebridge.io/mdns_txt_path'], { string: '/x' });
    assert.deepEqual(attributes['property.edgebridge.io/_9LIVES'], { string: 'y' });
    assert.equal(skipped.filter((s) => s.includes('not usable as an attribute name')).length, 2);
    assert.equal(identifier('a'.repeat(33)), undefined);
    assert.equal(identifier('a'.repeat(32)), 'a'.repeat(32));
  });

  it('publishes at most 32 attributes, the identity first', () => {
    const properties = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`P${String(i).padStart(3, '0')}`, 'v']),
    );
    const { attributes, skipped } = attributesOf(camera(properties));
    assert.equal(Object.keys(attributes).length, 32);
    assert.deepEqual(attributes.discovery, { string: 'cams' });
    assert.ok(skipped.some((s) => s.includes('more than 32 attributes')));
  });
});
