import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConventionPayloadError } from '../../../discovery-handlers/mqtt/convention.ts';
import { TasmotaConvention } from '../../../discovery-handlers/mqtt/conventions/tasmota.ts';

const b = (s: string) => Buffer.from(s);
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const tasmota = (maxDevices?: number) =>
  new TasmotaConvention({
    prefix: 'tasmota/discovery',
    ...(maxDevices === undefined ? {} : { maxDevices }),
  });

// A Sonoff POW's native discovery config as Tasmota 12 publishes it (retained).
const config = {
  ip: '192.168.1.50',
  dn: 'Kitchen Plug',
  fn: ['Kitchen Plug', null, null, null, null, null, null, null],
  hn: 'tasmota-1A2B3C-2876',
  mac: 'A4CF121A2B3C',
  md: 'Sonoff Pow R2',
  ty: 0,
  if: 0,
  ofln: 'Offline',
  onln: 'Online',
  state: ['OFF', 'ON', 'TOGGLE', 'HOLD'],
  sw: '12.5.0',
  t: 'tasmota_1A2B3C',
  ft: '%prefix%/%topic%/',
  tp: ['cmnd', 'stat', 'tele'],
  rl: [1, 0, 0, 0, 0, 0, 0, 0],
  swc: [-1, -1, -1, -1, -1, -1, -1, -1],
  btn: [0, 0, 0, 0, 0, 0, 0, 0],
  so: {
    '4': 0,
    '11': 0,
    '13': 0,
    '17': 0,
    '20': 0,
    '30': 0,
    '68': 0,
    '73': 0,
    '82': 0,
    '114': 0,
    '117': 0,
  },
  lk: 0,
  lt_st: 0,
  ver: 1,
};
const TOPIC = 'tasmota/discovery/A4CF121A2B3C/config';

describe('the Tasmota convention', () => {
  it('announces a device from its discovery config and listens on its expanded full topics', () => {
    const c = tasmota();
    assert.deepEqual(c.filters(), ['tasmota/discovery/+/config', 'tasmota/discovery/+/sensors']);
    assert.deepEqual(c.handle(TOPIC, json(config)), [
      {
        kind: 'device',
        device: {
          key: 'A4CF121A2B3C',
          name: 'Kitchen Plug',
          model: 'Sonoff Pow R2',
          attributes: {
            topic: 'tasmota_1A2B3C',
            full_topic: '%prefix%/%topic%/',
            ip: '192.168.1.50',
            hostname: 'tasmota-1A2B3C-2876',
            sw_version: '12.5.0',
            mac: 'A4CF121A2B3C',
          },
          stateTopics: [
            'tele/tasmota_1A2B3C/SENSOR',
            'tele/tasmota_1A2B3C/STATE',
            'stat/tasmota_1A2B3C/RESULT',
          ],
          commands: ['POWER1'],
        },
      },
    ]);
    assert.deepEqual(c.filters().slice(2), [
      'tele/tasmota_1A2B3C/LWT',
      'tele/tasmota_1A2B3C/SENSOR',
      'tele/tasmota_1A2B3C/STATE',
      'stat/tasmota_1A2B3C/RESULT',
    ]);
  });

  it('expands %topic%/%prefix%/, %hostname% and %id% templates', () => {
    const c = tasmota();
    c.handle(TOPIC, json({ ...config, ft: 'home/%hostname%/%id%/%topic%/%prefix%/' }));
    assert.deepEqual(c.filters().slice(2), [
      'home/tasmota-1A2B3C-2876/1A2B3C/tasmota_1A2B3C/tele/LWT',
      'home/tasmota-1A2B3C-2876/1A2B3C/tasmota_1A2B3C/tele/SENSOR',
      'home/tasmota-1A2B3C-2876/1A2B3C/tasmota_1A2B3C/tele/STATE',
      'home/tasmota-1A2B3C-2876/1A2B3C/tasmota_1A2B3C/stat/RESULT',
    ]);
    assert.equal(
      c.command('A4CF121A2B3C', 'POWER1', b('ON'))?.topic,
      'home/tasmota-1A2B3C-2876/1A2B3C/tasmota_1A2B3C/cmnd/POWER1',
    );
  });

  it('reads LWT Online/Offline, SENSOR, STATE, RESULT and the sensors snapshot', () => {
    const c = tasmota();
    c.handle(TOPIC, json(config));
    assert.deepEqual(c.handle('tele/tasmota_1A2B3C/LWT', b('Online')), [
      { kind: 'availability', key: 'A4CF121A2B3C', online: true },
    ]);
    assert.deepEqual(c.handle('tele/tasmota_1A2B3C/LWT', b('Offline')), [
      { kind: 'availability', key: 'A4CF121A2B3C', online: false },
    ]);
    assert.throws(
      () => c.handle('tele/tasmota_1A2B3C/LWT', b('Gone fishing')),
      ConventionPayloadError,
    );
    const sensor = {
      Time: '2026-12-03T13:00:00',
      ENERGY: { Total: 1.234, Power: 15, Voltage: 231 },
    };
    assert.deepEqual(c.handle('tele/tasmota_1A2B3C/SENSOR', json(sensor)), [
      {
        kind: 'reading',
        key: 'A4CF121A2B3C',
        values: { ENERGY: { Total: 1.234, Power: 15, Voltage: 231 } },
      },
    ]);
    assert.deepEqual(c.handle('stat/tasmota_1A2B3C/RESULT', json({ POWER: 'ON' })), [
      { kind: 'reading', key: 'A4CF121A2B3C', values: { POWER: 'ON' } },
    ]);
    assert.deepEqual(
      c.handle(
        'tele/tasmota_1A2B3C/STATE',
        json({ Time: 'x', Uptime: '0T01:00:00', POWER: 'OFF' }),
      ),
      [{ kind: 'reading', key: 'A4CF121A2B3C', values: { Uptime: '0T01:00:00', POWER: 'OFF' } }],
    );
    assert.deepEqual(
      c.handle('tasmota/discovery/A4CF121A2B3C/sensors', json({ sn: sensor, ver: 1 })),
      [
        {
          kind: 'reading',
          key: 'A4CF121A2B3C',
          values: { ENERGY: { Total: 1.234, Power: 15, Voltage: 231 } },
        },
      ],
    );
    assert.throws(
      () => c.handle('tele/tasmota_1A2B3C/SENSOR', b('{"ENERGY":')),
      ConventionPayloadError,
    );
  });

  it('sends commands to cmnd/<topic>/<command> and refuses names that are not Tasmota commands', () => {
    const c = tasmota();
    c.handle(TOPIC, json(config));
    assert.deepEqual(c.command('A4CF121A2B3C', 'POWER1', b('TOGGLE')), {
      topic: 'cmnd/tasmota_1A2B3C/POWER1',
      payload: b('TOGGLE'),
    });
    assert.equal(c.command('A4CF121A2B3C', 'Dimmer', b('50'))?.topic, 'cmnd/tasmota_1A2B3C/Dimmer');
    for (const name of ['POWER/../x', '#', '+', 'a b', '']) {
      assert.equal(c.command('A4CF121A2B3C', name, b('1')), undefined, name);
    }
    assert.equal(c.command('000000000000', 'POWER1', b('ON')), undefined);
  });

  it('removes the device on an empty config and stops listening on its topics', () => {
    const c = tasmota();
    c.handle(TOPIC, json(config));
    assert.deepEqual(c.handle(TOPIC, b('')), [{ kind: 'removed', key: 'A4CF121A2B3C' }]);
    assert.deepEqual(c.filters(), ['tasmota/discovery/+/config', 'tasmota/discovery/+/sensors']);
    assert.deepEqual(c.handle('tele/tasmota_1A2B3C/LWT', b('Online')), []);
    assert.deepEqual(c.handle(TOPIC, b('')), []);
  });

  it('moves to the new topics when the config changes its topic', () => {
    const c = tasmota();
    c.handle(TOPIC, json(config));
    c.handle(TOPIC, json({ ...config, t: 'kitchen_plug' }));
    assert.deepEqual(c.handle('tele/tasmota_1A2B3C/LWT', b('Online')), []);
    assert.deepEqual(c.handle('tele/kitchen_plug/LWT', b('Online')), [
      { kind: 'availability', key: 'A4CF121A2B3C', online: true },
    ]);
  });

  it('refuses configs whose topics would carry wildcards or climb, or take another device’s topics', () => {
    const c = tasmota(2);
    for (const bad of [
      { ...config, t: 'a/#' },
      { ...config, t: '+' },
      { ...config, t: '../x' },
      { ...config, t: 'x'.repeat(10_000) },
      { ...config, ft: '%prefix%/#/%topic%/' },
      { ...config, hn: 'a/+/b', ft: '%hostname%/%prefix%/' },
      { ...config, tp: ['cmnd', 'stat'] },
      { ...config, tp: ['cm/nd', 'stat', 'tele'] },
      { ...config, t: 'nul\u0000' },
      'not json',
      [1, 2],
    ]) {
      assert.throws(
        () => c.handle(TOPIC, json(bad)),
        ConventionPayloadError,
        JSON.stringify(bad).slice(0, 60),
      );
    }
    c.handle(TOPIC, json(config));
    assert.throws(
      () => c.handle('tasmota/discovery/A4CF12000001/config', json(config)),
      ConventionPayloadError,
    );
    c.handle('tasmota/discovery/A4CF12000002/config', json({ ...config, t: 'two' }));
    assert.throws(
      () => c.handle('tasmota/discovery/A4CF12000003/config', json({ ...config, t: 'three' })),
      ConventionPayloadError,
    );
    // A topic that is not a MAC is not discovery.
    assert.deepEqual(c.handle('tasmota/discovery/../config', json(config)), []);
  });
});
