import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConventionPayloadError,
  type ConventionUpdate,
} from '../../../discovery-handlers/mqtt/convention.ts';
import { HomieConvention } from '../../../discovery-handlers/mqtt/conventions/homie.ts';

const homie = (maxDevices?: number) =>
  new HomieConvention({ prefix: 'homie', ...(maxDevices === undefined ? {} : { maxDevices }) });
const b = (s: string) => Buffer.from(s);
const kinds = (updates: ConventionUpdate[]) => updates.map((u) => u.kind);

// The description document of the Homie 5 convention's own example, a thermostat.
const description5 = {
  homie: '5.0',
  version: 7,
  name: 'My device',
  nodes: {
    thermostat: {
      name: 'Room thermostat',
      properties: {
        temperature: { name: 'Temperature', datatype: 'float', unit: '°C' },
        setpoint: { name: 'Setpoint', datatype: 'float', settable: true, unit: '°C' },
        mode: { datatype: 'enum', format: 'auto,manual', settable: true },
        locked: { datatype: 'boolean' },
      },
    },
  },
};

describe('the Homie convention', () => {
  it('announces a Homie 5 device from $description and takes $state ready as online', () => {
    const c = homie();
    assert.deepEqual(c.filters(), ['homie/#']);
    assert.deepEqual(c.handle('homie/5/my-device/$state', b('init')), []);
    const updates = c.handle('homie/5/my-device/$description', b(JSON.stringify(description5)));
    assert.deepEqual(kinds(updates), ['device']);
    const device = updates[0]?.kind === 'device' ? updates[0].device : undefined;
    assert.deepEqual(device, {
      key: '5/my-device',
      name: 'My device',
      attributes: { homie: '5.0', version: '7' },
      stateTopics: [
        'homie/5/my-device/thermostat/temperature',
        'homie/5/my-device/thermostat/setpoint',
        'homie/5/my-device/thermostat/mode',
        'homie/5/my-device/thermostat/locked',
      ],
      commands: ['thermostat/setpoint', 'thermostat/mode'],
    });
    assert.deepEqual(c.handle('homie/5/my-device/$state', b('ready')), [
      { kind: 'availability', key: '5/my-device', online: true },
    ]);
  });

  it('turns property values into typed readings and refuses a value of the wrong type', () => {
    const c = homie();
    c.handle('homie/5/my-device/$description', b(JSON.stringify(description5)));
    assert.deepEqual(c.handle('homie/5/my-device/thermostat/temperature', b('21.5')), [
      { kind: 'reading', key: '5/my-device', values: { 'thermostat/temperature': 21.5 } },
    ]);
    assert.deepEqual(c.handle('homie/5/my-device/thermostat/locked', b('true')), [
      { kind: 'reading', key: '5/my-device', values: { 'thermostat/locked': true } },
    ]);
    assert.deepEqual(c.handle('homie/5/my-device/thermostat/mode', b('auto')), [
      { kind: 'reading', key: '5/my-device', values: { 'thermostat/mode': 'auto' } },
    ]);
    assert.throws(
      () => c.handle('homie/5/my-device/thermostat/temperature', b('warm')),
      ConventionPayloadError,
    );
    assert.throws(
      () => c.handle('homie/5/my-device/thermostat/locked', b('TRUE')),
      ConventionPayloadError,
    );
    // Our own command echo and unknown properties are not readings.
    assert.deepEqual(c.handle('homie/5/my-device/thermostat/setpoint/set', b('22')), []);
    assert.deepEqual(c.handle('homie/5/my-device/thermostat/humidity', b('40')), []);
  });

  it('sends commands to settable properties on .../set, not retained, and to nothing else', () => {
    const c = homie();
    c.handle('homie/5/my-device/$description', b(JSON.stringify(description5)));
    assert.deepEqual(c.command('5/my-device', 'thermostat/setpoint', b('22.5')), {
      topic: 'homie/5/my-device/thermostat/setpoint/set',
      payload: b('22.5'),
      retain: false,
    });
    assert.equal(c.command('5/my-device', 'thermostat/temperature', b('1')), undefined);
    assert.equal(c.command('5/other', 'thermostat/setpoint', b('1')), undefined);
  });

  it('maps lost and disconnected to offline, and removes the device when $state is cleared', () => {
    const c = homie();
    c.handle('homie/5/my-device/$state', b('ready'));
    assert.deepEqual(
      kinds(c.handle('homie/5/my-device/$description', b(JSON.stringify(description5)))),
      ['device', 'availability'],
    );
    assert.deepEqual(c.handle('homie/5/my-device/$state', b('lost')), [
      { kind: 'availability', key: '5/my-device', online: false },
    ]);
    assert.deepEqual(c.handle('homie/5/my-device/$state', b('disconnected')), []);
    assert.deepEqual(c.handle('homie/5/my-device/$state', b('ready')), [
      { kind: 'availability', key: '5/my-device', online: true },
    ]);
    assert.deepEqual(c.handle('homie/5/my-device/$state', b('')), [
      { kind: 'removed', key: '5/my-device' },
    ]);
    // The rest of its retained topics being cleared says nothing more.
    assert.deepEqual(c.handle('homie/5/my-device/$description', b('')), []);
    assert.deepEqual(c.handle('homie/5/my-device/thermostat/temperature', b('')), []);
  });

  it('builds a Homie 4 device from $homie, $name, $nodes, $properties and property attributes', () => {
    const c = homie();
    // The Homie 4 convention's example: a super car with an engine node.
    const sequence: [string, string][] = [
      ['homie/super-car/$state', 'init'],
      ['homie/super-car/$homie', '4.0.0'],
      ['homie/super-car/$name', 'Super car'],
      ['homie/super-car/$nodes', 'wheels,engine,lights[]'],
      ['homie/super-car/engine/$name', 'Car engine'],
      ['homie/super-car/engine/$type', 'V8'],
      ['homie/super-car/engine/$properties', 'speed,direction,temperature'],
      ['homie/super-car/engine/temperature/$name', 'Engine temperature'],
      ['homie/super-car/engine/temperature/$datatype', 'float'],
      ['homie/super-car/engine/temperature/$unit', '°C'],
      ['homie/super-car/engine/speed/$datatype', 'integer'],
      ['homie/super-car/engine/speed/$settable', 'true'],
    ];
    let last: ConventionUpdate[] = [];
    for (const [topic, payload] of sequence) {
      const updates = c.handle(topic, b(payload));
      if (updates.length > 0) last = updates;
    }
    const device = last[0]?.kind === 'device' ? last[0].device : undefined;
    assert.deepEqual(device, {
      key: 'super-car',
      name: 'Super car',
      attributes: { homie: '4.0.0' },
      stateTopics: [
        'homie/super-car/engine/speed',
        'homie/super-car/engine/direction',
        'homie/super-car/engine/temperature',
      ],
      commands: ['engine/speed'],
    });
    assert.deepEqual(c.handle('homie/super-car/$state', b('ready')), [
      { kind: 'availability', key: 'super-car', online: true },
    ]);
    assert.deepEqual(c.handle('homie/super-car/engine/temperature', b('21.5')), [
      { kind: 'reading', key: 'super-car', values: { 'engine/temperature': 21.5 } },
    ]);
    assert.deepEqual(c.handle('homie/super-car/engine/speed', b('120')), [
      { kind: 'reading', key: 'super-car', values: { 'engine/speed': 120 } },
    ]);
    assert.deepEqual(c.command('super-car', 'engine/speed', b('80')), {
      topic: 'homie/super-car/engine/speed/set',
      payload: b('80'),
      retain: false,
    });
    assert.deepEqual(c.handle('homie/super-car/$state', b('lost')), [
      { kind: 'availability', key: 'super-car', online: false },
    ]);
    assert.deepEqual(c.handle('homie/super-car/$homie', b('')), [
      { kind: 'removed', key: 'super-car' },
    ]);
  });

  it('reads values that a broker delivers before what types them (retained topics come in its order)', () => {
    const c = homie();
    // Homie 4: the value before its $datatype, and before $properties lists it.
    c.handle('homie/car/$homie', b('4.0.0'));
    c.handle('homie/car/$nodes', b('engine'));
    assert.deepEqual(c.handle('homie/car/engine/temperature', b('91.5')), []);
    const listedNow = c.handle('homie/car/engine/$properties', b('temperature'));
    assert.deepEqual(listedNow.at(-1), {
      kind: 'reading',
      key: 'car',
      values: { 'engine/temperature': '91.5' },
    });
    const typed = c.handle('homie/car/engine/temperature/$datatype', b('float'));
    assert.deepEqual(typed.at(-1), {
      kind: 'reading',
      key: 'car',
      values: { 'engine/temperature': 91.5 },
    });
    // Homie 5: a value before $description.
    c.handle('homie/5/thermo/$state', b('ready'));
    assert.deepEqual(c.handle('homie/5/thermo/thermostat/temperature', b('21.5')), []);
    const described = c.handle('homie/5/thermo/$description', b(JSON.stringify(description5)));
    assert.deepEqual(described.at(-1), {
      kind: 'reading',
      key: '5/thermo',
      values: { 'thermostat/temperature': 21.5 },
    });
  });

  it('refuses description documents that are not Homie 5 with one payload error each', () => {
    const c = homie();
    for (const bad of [
      'not json',
      '[]',
      JSON.stringify({ ...description5, homie: '4.0' }),
      JSON.stringify({ ...description5, nodes: { '../x': { properties: {} } } }),
      JSON.stringify({
        ...description5,
        nodes: { n: { properties: { 'a+#': { datatype: 'float' } } } },
      }),
      JSON.stringify({ ...description5, nodes: { n: { properties: { p: { datatype: 5 } } } } }),
    ]) {
      assert.throws(
        () => c.handle('homie/5/dev/$description', b(bad)),
        ConventionPayloadError,
        bad,
      );
    }
  });

  it('tracks at most maxDevices devices', () => {
    const c = homie(2);
    c.handle('homie/5/a/$state', b('ready'));
    c.handle('homie/5/b/$state', b('ready'));
    assert.throws(() => c.handle('homie/5/c/$state', b('ready')), ConventionPayloadError);
    c.handle('homie/5/a/$state', b(''));
    assert.deepEqual(c.handle('homie/5/c/$state', b('ready')), []);
  });
});
