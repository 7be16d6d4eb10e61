import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConventionPayloadError,
  type ConventionUpdate,
} from '../../../discovery-handlers/mqtt/convention.ts';
import { Zigbee2MqttConvention } from '../../../discovery-handlers/mqtt/conventions/zigbee2mqtt.ts';

const b = (s: string) => Buffer.from(s);
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const z2m = (maxDevices?: number) =>
  new Zigbee2MqttConvention({
    prefix: 'zigbee2mqtt',
    ...(maxDevices === undefined ? {} : { maxDevices }),
  });
const availabilities = (updates: ConventionUpdate[]) =>
  updates.flatMap((u) =>
    u.kind === 'availability' ? [`${u.key}:${u.online ? 'online' : 'offline'}`] : [],
  );

// bridge/devices as the Zigbee2MQTT documentation shows it: the coordinator first, then the devices.
const coordinator = {
  ieee_address: '0x00124b00120144ae',
  type: 'Coordinator',
  friendly_name: 'Coordinator',
  network_address: 0,
  supported: false,
  disabled: false,
  definition: null,
  endpoints: {},
};
const bulb = {
  ieee_address: '0x000b57fffec6a5b2',
  type: 'Router',
  network_address: 40369,
  supported: true,
  friendly_name: 'my_bulb',
  disabled: false,
  description: 'this is my bulb',
  definition: {
    model: 'LED1545G12',
    vendor: 'IKEA',
    description: 'TRADFRI LED bulb E26/E27 980 lumen, dimmable, white spectrum, opal white',
    exposes: [
      {
        type: 'light',
        features: [
          {
            type: 'binary',
            name: 'state',
            property: 'state',
            value_on: 'ON',
            value_off: 'OFF',
            access: 7,
          },
          {
            type: 'numeric',
            name: 'brightness',
            property: 'brightness',
            value_min: 0,
            value_max: 254,
            access: 7,
          },
        ],
      },
      { type: 'numeric', name: 'linkquality', property: 'linkquality', access: 1 },
    ],
  },
  power_source: 'Mains (single phase)',
  software_build_id: '2.3.086',
  model_id: 'TRADFRI bulb E27 WS opal 980lm',
  manufacturer: 'IKE Manufacturer',
  interview_completed: true,
  interviewing: false,
};
const sensor = {
  ieee_address: '0x00158d0001dc2d3e',
  type: 'EndDevice',
  friendly_name: 'living/temperature',
  definition: {
    model: 'WSDCGQ11LM',
    vendor: 'Aqara',
    exposes: [{ type: 'numeric', property: 'temperature', access: 1 }],
  },
  model_id: 'lumi.weather',
};

describe('the Zigbee2MQTT convention', () => {
  it('announces the devices of bridge/devices, not the coordinator, keyed by IEEE address', () => {
    const c = z2m();
    assert.deepEqual(c.filters(), ['zigbee2mqtt/#']);
    const updates = c.handle('zigbee2mqtt/bridge/devices', json([coordinator, bulb, sensor]));
    const devices = updates.flatMap((u) => (u.kind === 'device' ? [u.device] : []));
    assert.deepEqual(devices[0], {
      key: '0x000b57fffec6a5b2',
      name: 'my_bulb',
      manufacturer: 'IKEA',
      model: 'LED1545G12',
      attributes: {
        model_id: 'TRADFRI bulb E27 WS opal 980lm',
        manufacturer: 'IKE Manufacturer',
        type: 'Router',
        power_source: 'Mains (single phase)',
        software_build_id: '2.3.086',
        description: 'TRADFRI LED bulb E26/E27 980 lumen, dimmable, white spectrum, opal white',
      },
      stateTopics: ['zigbee2mqtt/my_bulb'],
      commands: ['set', 'brightness', 'state'],
    });
    assert.deepEqual(
      devices.map((d) => d.key),
      ['0x000b57fffec6a5b2', '0x00158d0001dc2d3e'],
    );
    // The same list again changes nothing.
    assert.deepEqual(c.handle('zigbee2mqtt/bridge/devices', json([coordinator, bulb, sensor])), []);
  });

  it('reads bridge/state in the 1.x and 2.x forms; an offline bridge takes all its devices offline', () => {
    for (const [online, offline] of [
      ['online', 'offline'],
      ['{"state":"online"}', '{"state":"offline"}'],
    ] as const) {
      const c = z2m();
      c.handle('zigbee2mqtt/bridge/devices', json([coordinator, bulb, sensor]));
      assert.deepEqual(availabilities(c.handle('zigbee2mqtt/bridge/state', b(online))), [
        '0x000b57fffec6a5b2:online',
        '0x00158d0001dc2d3e:online',
      ]);
      assert.deepEqual(availabilities(c.handle('zigbee2mqtt/bridge/state', b(offline))), [
        '0x000b57fffec6a5b2:offline',
        '0x00158d0001dc2d3e:offline',
      ]);
      // A device's own availability while the bridge is down does not make it reachable.
      assert.deepEqual(c.handle('zigbee2mqtt/my_bulb/availability', b(online)), []);
      assert.deepEqual(availabilities(c.handle('zigbee2mqtt/bridge/state', b(online))), [
        '0x000b57fffec6a5b2:online',
        '0x00158d0001dc2d3e:online',
      ]);
    }
  });

  it('follows per-device availability in both forms, even when it arrives before bridge/devices', () => {
    const c = z2m();
    c.handle('zigbee2mqtt/bridge/state', b('{"state":"online"}'));
    assert.deepEqual(c.handle('zigbee2mqtt/living/temperature/availability', b('offline')), []);
    const updates = c.handle('zigbee2mqtt/bridge/devices', json([coordinator, bulb, sensor]));
    assert.deepEqual(availabilities(updates), [
      '0x000b57fffec6a5b2:online',
      '0x00158d0001dc2d3e:offline',
    ]);
    assert.deepEqual(
      c.handle('zigbee2mqtt/living/temperature/availability', b('{"state":"online"}')),
      [{ kind: 'availability', key: '0x00158d0001dc2d3e', online: true }],
    );
    assert.deepEqual(c.handle('zigbee2mqtt/my_bulb/availability', b('{"state":"offline"}')), [
      { kind: 'availability', key: '0x000b57fffec6a5b2', online: false },
    ]);
    assert.throws(
      () => c.handle('zigbee2mqtt/my_bulb/availability', b('maybe')),
      ConventionPayloadError,
    );
  });

  it('reads a retained state that arrives before bridge/devices names its device', () => {
    const c = z2m();
    assert.deepEqual(c.handle('zigbee2mqtt/living/temperature', json({ temperature: 19.5 })), []);
    // Our own commands and other topics under names nobody lists stay unread.
    assert.deepEqual(c.handle('zigbee2mqtt/nobody', json({ a: 1 })), []);
    const updates = c.handle('zigbee2mqtt/bridge/devices', json([coordinator, sensor]));
    assert.deepEqual(updates.at(-1), {
      kind: 'reading',
      key: '0x00158d0001dc2d3e',
      values: { temperature: 19.5 },
    });
  });

  it('turns a device topic JSON into a reading and refuses what is not a JSON object', () => {
    const c = z2m();
    c.handle('zigbee2mqtt/bridge/devices', json([bulb, sensor]));
    assert.deepEqual(
      c.handle('zigbee2mqtt/living/temperature', json({ temperature: 21.3, linkquality: 92 })),
      [
        {
          kind: 'reading',
          key: '0x00158d0001dc2d3e',
          values: { temperature: 21.3, linkquality: 92 },
        },
      ],
    );
    assert.throws(() => c.handle('zigbee2mqtt/my_bulb', b('{"state":')), ConventionPayloadError);
    assert.throws(() => c.handle('zigbee2mqtt/my_bulb', b('[1,2]')), ConventionPayloadError);
    // Valid JSON, but over the size cap.
    assert.throws(
      () => c.handle('zigbee2mqtt/my_bulb', json({ big: 'x'.repeat(300 * 1024) })),
      ConventionPayloadError,
    );
    // Commands, gets and unknown names are not readings.
    assert.deepEqual(c.handle('zigbee2mqtt/my_bulb/set', json({ state: 'ON' })), []);
    assert.deepEqual(c.handle('zigbee2mqtt/unknown', json({ a: 1 })), []);
    assert.deepEqual(c.handle('zigbee2mqtt/unknown/state', b('ON')), []);
  });

  it('sends commands to <friendly_name>/set: the whole JSON, or one settable property', () => {
    const c = z2m();
    c.handle('zigbee2mqtt/bridge/devices', json([bulb, sensor]));
    assert.deepEqual(c.command('0x000b57fffec6a5b2', 'set', b('{"state":"ON","brightness":100}')), {
      topic: 'zigbee2mqtt/my_bulb/set',
      payload: b('{"state":"ON","brightness":100}'),
    });
    assert.deepEqual(c.command('0x000b57fffec6a5b2', 'state', b('ON')), {
      topic: 'zigbee2mqtt/my_bulb/set',
      payload: b('{"state":"ON"}'),
    });
    assert.deepEqual(c.command('0x000b57fffec6a5b2', 'brightness', b('128')), {
      topic: 'zigbee2mqtt/my_bulb/set',
      payload: b('{"brightness":128}'),
    });
    assert.equal(c.command('0x000b57fffec6a5b2', 'linkquality', b('1')), undefined);
    assert.equal(c.command('0x00158d0001dc2d3e', 'temperature', b('1')), undefined);
  });

  it('follows a friendly-name rename and removes a device that leaves bridge/devices', () => {
    const c = z2m();
    c.handle('zigbee2mqtt/bridge/devices', json([coordinator, bulb, sensor]));
    const renamed = c.handle(
      'zigbee2mqtt/bridge/devices',
      json([coordinator, { ...bulb, friendly_name: 'hall/bulb' }, sensor]),
    );
    assert.equal(renamed.length, 1);
    const device = renamed[0]?.kind === 'device' ? renamed[0].device : undefined;
    assert.equal(device?.key, '0x000b57fffec6a5b2');
    assert.deepEqual(device?.stateTopics, ['zigbee2mqtt/hall/bulb']);
    assert.deepEqual(c.handle('zigbee2mqtt/my_bulb', json({ state: 'ON' })), []);
    assert.deepEqual(c.handle('zigbee2mqtt/hall/bulb', json({ state: 'ON' })), [
      { kind: 'reading', key: '0x000b57fffec6a5b2', values: { state: 'ON' } },
    ]);
    assert.equal(
      c.command('0x000b57fffec6a5b2', 'set', b('{}'))?.topic,
      'zigbee2mqtt/hall/bulb/set',
    );
    assert.deepEqual(c.handle('zigbee2mqtt/bridge/devices', json([coordinator, sensor])), [
      { kind: 'removed', key: '0x000b57fffec6a5b2' },
    ]);
    // A cleared retained list: the bridge and its devices are gone.
    assert.deepEqual(c.handle('zigbee2mqtt/bridge/devices', b('')), [
      { kind: 'removed', key: '0x00158d0001dc2d3e' },
    ]);
  });

  it('skips entries whose names would widen our topics, and caps the devices', () => {
    const c = z2m(2);
    const hostile = [
      'a/#',
      'b/+/c',
      '../up',
      'nul\u0000x',
      'x'.repeat(10_000),
      'bridge/devices',
      '$SYS/x',
      '',
    ].map((friendly_name, i) => ({
      ieee_address: `0x${String(i).padStart(16, '0')}`,
      type: 'Router',
      friendly_name,
    }));
    assert.deepEqual(c.handle('zigbee2mqtt/bridge/devices', json(hostile)), []);
    const many = [
      bulb,
      sensor,
      { ...sensor, ieee_address: '0x00158d0001dc2d3f', friendly_name: 'third' },
    ];
    assert.equal(
      c.handle('zigbee2mqtt/bridge/devices', json(many)).filter((u) => u.kind === 'device').length,
      2,
    );
    assert.throws(
      () => c.handle('zigbee2mqtt/bridge/devices', json({ not: 'a list' })),
      ConventionPayloadError,
    );
  });
});
