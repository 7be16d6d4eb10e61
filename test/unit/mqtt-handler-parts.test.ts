import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SensorDevice } from '../../discovery-handlers/mqtt/convention.ts';
import type { Source } from '../../discovery-handlers/mqtt/index.ts';
import { SensorTable } from '../../discovery-handlers/mqtt/sensor-table.ts';
import { checkSchema } from '../../src/util/schema-check.ts';
import { discoveredDeviceSchema } from '../../discovery-handlers/device-schema.ts';
import { InvalidDetailsError } from '../../discovery-handlers/handler.ts';
import { parseMqttDetails } from '../../discovery-handlers/mqtt/details.ts';
import { sensorDeviceId } from '../../discovery-handlers/mqtt/device-id.ts';
import { PatternSource, parseTopicPattern } from '../../discovery-handlers/mqtt/topic-pattern.ts';

describe('mqtt sensor device ids', () => {
  it('keep a plain key readable and give hostile keys a safe, stable, distinct id', () => {
    assert.equal(sensorDeviceId('homeassistant', 'id:kitchen-1'), 'homeassistant:id:kitchen-1');
    const hostile = [
      '../../etc',
      'a/+/#',
      'nul\u0000byte',
      'x'.repeat(10_000),
      'a b',
      'a_b',
      'a/b',
    ];
    const ids = hostile.map((k) => sensorDeviceId('homeassistant', k));
    assert.equal(new Set(ids).size, hostile.length, 'two keys, two ids');
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9._:-]{1,96}$/);
      checkSchema(discoveredDeviceSchema, { id }, 'device');
    }
    assert.equal(sensorDeviceId('homeassistant', 'a/b'), ids[6], 'stable');
  });
});

describe('mqtt topic patterns', () => {
  it('name the id, the metric and further levels', () => {
    const p = new PatternSource([parseTopicPattern('site/{site}/sensors/{id}/{metric}')], 10);
    assert.deepEqual(p.filters(), ['site/+/sensors/+/+']);
    assert.deepEqual(p.handle('site/north/sensors/t1/temp', Buffer.from('21.5')), [
      {
        kind: 'device',
        device: {
          key: 't1',
          attributes: { site: 'north' },
          stateTopics: ['site/north/sensors/t1/+'],
          commands: [],
        },
      },
      { kind: 'reading', key: 't1', values: { temp: 21.5 } },
    ]);
    // Known device: only the reading; text that is not JSON stays text.
    assert.deepEqual(p.handle('site/north/sensors/t1/state', Buffer.from('ok')), [
      { kind: 'reading', key: 't1', values: { state: 'ok' } },
    ]);
    assert.deepEqual(p.handle('site/north/other/t1/temp', Buffer.from('1')), []);
  });

  it('take a JSON object as the values when there is no {metric}, and stop at the device cap', () => {
    const p = new PatternSource([parseTopicPattern('s/{id}')], 1);
    assert.deepEqual(p.handle('s/a', Buffer.from('{"t":1,"h":2}'))[1], {
      kind: 'reading',
      key: 'a',
      values: { t: 1, h: 2 },
    });
    assert.deepEqual(p.handle('s/b', Buffer.from('1')), []);
  });

  it('refuse patterns without {id}, with wildcards or repeated names', () => {
    for (const bad of [
      'sensors/+/{id}',
      'sensors/{metric}',
      'a/{id}/{id}',
      'a//{id}',
      'a/{Id}',
      'a/#/{id}',
    ])
      assert.throws(() => parseTopicPattern(bad), Error, bad);
  });
});

describe('mqtt details', () => {
  it('default to every convention of this build and check what is given', () => {
    const d = parseMqttDetails({ patterns: ['sensors/{id}/{metric}'] });
    assert.ok(d.conventions.includes('homeassistant'));
    assert.equal(d.brokerUrl, undefined);
    assert.equal(d.patterns[0]?.filter, 'sensors/+/+');
    for (const bad of [
      { brokerUrl: 'http://x' },
      { brokerUrl: 'mqtt://user:pw@host:1883' },
      { conventions: ['nope'] },
      { prefixes: { homeassistant: 'ha/#' } },
      { patterns: ['no/id/here'] },
      { maxPayloadBytes: 1 },
    ])
      assert.throws(() => parseMqttDetails(bad), InvalidDetailsError, JSON.stringify(bad));
  });
});

describe('the mqtt sensor table', () => {
  const source: Source = {
    name: 'homeassistant',
    filters: () => [],
    handle: () => [],
    command: () => undefined,
  };
  const device = (model: string): SensorDevice => ({
    key: 'kitchen-1',
    model,
    attributes: {},
    stateTopics: ['kitchen/t'],
    commands: [],
  });
  const table = (): SensorTable =>
    new SensorTable({
      brokerUrl: 'mqtt://sensors',
      maxDevices: 10,
      publish: { data: () => undefined, state: () => undefined, event: () => undefined },
      onLimit: () => undefined,
      send: () => undefined,
    });

  it('makes a listed device once per change: a repeated announcement changes neither the list nor its objects', () => {
    const t = table();
    t.apply(source, [{ kind: 'device', device: device('A1') }]);
    const [first] = t.devices();
    const version = t.version;
    t.apply(source, [{ kind: 'device', device: device('A1') }]);
    assert.equal(t.version, version);
    assert.equal(t.devices()[0], first, 'the same object, not made again');
    t.apply(source, [{ kind: 'device', device: device('A2') }]);
    assert.notEqual(t.version, version);
    assert.equal(t.devices()[0]?.properties.MQTT_MODEL, 'A2');
    assert.equal(first?.properties.MQTT_MODEL, 'A1', 'a list already handed out is not changed');
  });
});
