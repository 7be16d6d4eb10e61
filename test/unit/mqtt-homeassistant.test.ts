import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConventionPayloadError,
  type ConventionUpdate,
} from '../../discovery-handlers/mqtt/convention.ts';
import {
  HomeAssistantConvention,
  templatePath,
} from '../../discovery-handlers/mqtt/conventions/homeassistant.ts';

// Message sequences as Home Assistant's MQTT discovery documentation shows them.

const ha = (): HomeAssistantConvention => new HomeAssistantConvention({ prefix: 'homeassistant' });
const send = (
  c: HomeAssistantConvention,
  topic: string,
  payload: object | string,
): ConventionUpdate[] =>
  c.handle(topic, Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)));

describe('Home Assistant discovery', () => {
  it('reads an abbreviated entity config with ~ expansion, availability and a command topic', () => {
    const c = ha();
    const updates = send(c, 'homeassistant/light/kitchen/config', {
      '~': 'homeassistant/light/kitchen',
      name: 'Kitchen',
      uniq_id: 'kitchen_light',
      cmd_t: '~/set',
      stat_t: '~/state',
      avty_t: '~/status',
      pl_avail: 'up',
      pl_not_avail: 'down',
      bri_cmd_t: '~/brightness/set',
      dev: {
        ids: ['ea334450945afc'],
        name: 'Kitchen',
        mf: 'Bla electronics',
        mdl: 'xya',
        sw: '1.0',
      },
      o: { name: 'bla2mqtt', sw: '2.1' },
    });
    assert.deepEqual(updates, [
      {
        kind: 'device',
        device: {
          key: 'id:ea334450945afc',
          name: 'Kitchen',
          manufacturer: 'Bla electronics',
          model: 'xya',
          attributes: { origin: 'bla2mqtt', origin_sw_version: '2.1', sw_version: '1.0' },
          stateTopics: ['homeassistant/light/kitchen/state'],
          commands: ['kitchen', 'kitchen/brightness'],
        },
      },
    ]);
    assert.ok(c.filters().includes('homeassistant/light/kitchen/state'));
    assert.ok(c.filters().includes('homeassistant/light/kitchen/status'));
    assert.deepEqual(send(c, 'homeassistant/light/kitchen/status', 'down'), [
      { kind: 'availability', key: 'id:ea334450945afc', online: false },
    ]);
    assert.deepEqual(send(c, 'homeassistant/light/kitchen/status', 'up'), [
      { kind: 'availability', key: 'id:ea334450945afc', online: true },
    ]);
    assert.deepEqual(send(c, 'homeassistant/light/kitchen/state', 'ON'), [
      { kind: 'reading', key: 'id:ea334450945afc', values: { kitchen: 'ON' } },
    ]);
    const route = c.command('id:ea334450945afc', 'kitchen/brightness', Buffer.from('128'));
    assert.equal(route?.topic, 'homeassistant/light/kitchen/brightness/set');
    assert.equal(c.command('id:ea334450945afc', 'nope', Buffer.from('x')), undefined);
  });

  it('makes one device of two entities with the same identifiers, and reads a shared JSON state', () => {
    const c = ha();
    const dev = { identifiers: ['0AFFD2'], name: 'Bedroom sensor' };
    send(c, 'homeassistant/sensor/sensorBedroomT/config', {
      device_class: 'temperature',
      state_topic: 'homeassistant/sensor/sensorBedroom/state',
      unit_of_measurement: '°C',
      value_template: '{{ value_json.temperature}}',
      unique_id: 'temp01ae',
      device: dev,
    });
    const second = send(c, 'homeassistant/sensor/sensorBedroom/H/config', {
      device_class: 'humidity',
      state_topic: 'homeassistant/sensor/sensorBedroom/state',
      unit_of_measurement: '%',
      value_template: "{{ value_json['humidity'] | float }}",
      unique_id: 'hum01ae',
      device: dev,
    });
    assert.equal(second.length, 1);
    assert.equal(second[0]?.kind, 'device');
    assert.deepEqual(
      send(c, 'homeassistant/sensor/sensorBedroom/state', { temperature: 23.2, humidity: 43.7 }),
      [{ kind: 'reading', key: 'id:0AFFD2', values: { sensorBedroomT: 23.2, H: 43.7 } }],
    );
    // An empty retained config removes one entity; the device stays until its last one goes.
    assert.equal(send(c, 'homeassistant/sensor/sensorBedroomT/config', '')[0]?.kind, 'device');
    assert.deepEqual(send(c, 'homeassistant/sensor/sensorBedroom/H/config', ''), [
      { kind: 'removed', key: 'id:0AFFD2' },
    ]);
    assert.deepEqual(send(c, 'homeassistant/sensor/sensorBedroom/state', { temperature: 1 }), []);
    assert.deepEqual(
      c.filters().filter((f) => !f.endsWith('/config')),
      [],
    );
  });

  it('reads device-based discovery with cmps and shared options, and removes components', () => {
    const c = ha();
    const config = {
      dev: {
        ids: 'ea334450945afc',
        name: 'Kitchen',
        mf: 'Bla electronics',
        mdl: 'xya',
        sw: '1.0',
        sn: 'ea334450945afc',
        hw: '1.0rev2',
      },
      o: { name: 'bla2mqtt', sw: '2.1', url: 'https://bla2mqtt.example.com/support' },
      cmps: {
        some_unique_component_id1: {
          p: 'sensor',
          device_class: 'temperature',
          unit_of_measurement: '°C',
          value_template: '{{ value_json.temperature}}',
          unique_id: 'temp01ae_t',
        },
        some_unique_id2: {
          p: 'sensor',
          device_class: 'humidity',
          unit_of_measurement: '%',
          value_template: '{{ value_json.humidity}}',
          unique_id: 'temp01ae_h',
        },
        bla_switch: { p: 'switch', cmd_t: 'bla/switch/set', unique_id: 'sw1' },
      },
      state_topic: 'sensorBedroom/state',
      avty: [{ t: 'bla/bridge', val_tpl: '{{ value_json.state }}' }, { t: 'bla/device' }],
      avty_mode: 'all',
      qos: 2,
    };
    const [update] = send(c, 'homeassistant/device/ea334450945afc/config', config);
    assert.equal(update?.kind, 'device');
    if (update?.kind !== 'device') return;
    assert.equal(update.device.key, 'id:ea334450945afc');
    assert.deepEqual(update.device.commands, ['bla_switch']);
    assert.deepEqual(update.device.stateTopics, ['sensorBedroom/state']);
    assert.equal(update.device.attributes.serial_number, 'ea334450945afc');
    assert.equal(update.device.attributes.hw_version, '1.0rev2');
    assert.deepEqual(send(c, 'sensorBedroom/state', { temperature: 20, humidity: 50 }), [
      {
        kind: 'reading',
        key: 'id:ea334450945afc',
        // The switch shares the top-level state_topic too, as in Home Assistant.
        values: {
          some_unique_component_id1: 20,
          some_unique_id2: 50,
          bla_switch: { temperature: 20, humidity: 50 },
        },
      },
    ]);
    // availability_mode all: online only once both topics say so.
    assert.deepEqual(send(c, 'bla/bridge', { state: 'online' }), [
      { kind: 'availability', key: 'id:ea334450945afc', online: true },
    ]);
    assert.deepEqual(send(c, 'bla/device', 'offline'), [
      { kind: 'availability', key: 'id:ea334450945afc', online: false },
    ]);
    assert.equal(
      c.command('id:ea334450945afc', 'bla_switch', Buffer.from('ON'))?.topic,
      'bla/switch/set',
    );
    // A component reduced to its platform is removed; the rest stays.
    const reduced = { ...config, cmps: { ...config.cmps, bla_switch: { p: 'switch' } } };
    const [after] = send(c, 'homeassistant/device/ea334450945afc/config', reduced);
    assert.equal(after?.kind === 'device' && after.device.commands.length, 0);
    assert.deepEqual(send(c, 'homeassistant/device/ea334450945afc/config', ''), [
      { kind: 'removed', key: 'id:ea334450945afc' },
    ]);
  });

  it('treats an entity without a device as a device of its own', () => {
    const c = ha();
    const [u] = send(c, 'homeassistant/binary_sensor/garden/config', {
      name: null,
      device_class: 'motion',
      state_topic: 'homeassistant/binary_sensor/garden/state',
    });
    assert.equal(
      u?.kind === 'device' && u.device.key,
      'entity:homeassistant/binary_sensor/garden/config',
    );
  });

  it('refuses bad configs with a payload error and keeps what it had', () => {
    const c = ha();
    send(c, 'homeassistant/sensor/a/config', { stat_t: 'a/state', dev: { ids: 'a' } });
    for (const bad of [
      '{not json',
      '[1,2]',
      JSON.stringify({ stat_t: 'sensors/#', dev: { ids: 'a' } }),
      JSON.stringify({ stat_t: 5, dev: { ids: 'a' } }),
      JSON.stringify({ avty: 'x', dev: { ids: 'a' } }),
      JSON.stringify({ stat_t: 'x\u0000y' }),
      'x'.repeat(70_000),
    ])
      assert.throws(
        () => c.handle('homeassistant/sensor/a/config', Buffer.from(bad)),
        ConventionPayloadError,
      );
    assert.deepEqual(send(c, 'a/state', '1'), [{ kind: 'reading', key: 'id:a', values: { a: 1 } }]);
    // Topics that are not discovery under the prefix mean nothing.
    assert.deepEqual(send(c, 'homeassistant/status', 'online'), []);
    assert.deepEqual(send(c, 'homeassistant/nonsense/a/config', {}), []);
    assert.deepEqual(send(c, 'homeassistant/sensor/../config', {}), []);
    assert.deepEqual(send(c, 'homeassistant/sensor/a b/config', {}), []);
  });

  it('caps the devices it tracks', () => {
    const c = new HomeAssistantConvention({ prefix: 'ha', maxDevices: 2 });
    send(c, 'ha/sensor/a/config', { dev: { ids: 'a' } });
    send(c, 'ha/sensor/b/config', { dev: { ids: 'b' } });
    send(c, 'ha/sensor/b2/config', { dev: { ids: 'b' } });
    assert.throws(
      () => send(c, 'ha/sensor/c/config', { dev: { ids: 'c' } }),
      ConventionPayloadError,
    );
  });

  it('reads the value templates sensors commonly use, and only those', () => {
    assert.deepEqual(templatePath('{{ value_json.a.b }}'), ['a', 'b']);
    assert.deepEqual(templatePath("{{ value_json['x y'] | float(0) }}"), ['x y']);
    assert.deepEqual(templatePath('{{value_json.list[0]}}'), ['list', '0']);
    assert.equal(templatePath('{{ value }}'), undefined);
    assert.equal(templatePath('{% if value %}1{% endif %}'), undefined);
  });
});
