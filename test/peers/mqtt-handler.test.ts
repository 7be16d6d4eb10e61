import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';
import { waitFor } from '../harness/mqtt-peers.ts';
import { runMqttHandler, type HandlerRun } from './fixtures/mqtt-handler-run.ts';

// The mqtt handler in this process against a real mosquitto on loopback: a
// sensor (an MQTT client of that broker) announces itself as Home
// Assistant's documentation shows; the handler's lists, and what it hands the
// agent's publisher, are what the test reads.

const kitchen = {
  '~': 'kitchen/light',
  name: 'Kitchen light',
  uniq_id: 'kitchen_light_1',
  cmd_t: '~/set',
  stat_t: '~/state',
  avty_t: '~/status',
  dev: { ids: ['kitchen-1'], name: 'Kitchen', mf: 'Bla electronics', mdl: 'xya' },
};
const kitchenTemp = {
  name: 'Kitchen temperature',
  stat_t: 'kitchen/climate',
  val_tpl: '{{ value_json.temperature }}',
  dev: { ids: ['kitchen-1'] },
};

describe('the mqtt handler against mosquitto', () => {
  let broker: Mosquitto;
  let sensor: MqttClient;
  const runs: HandlerRun[] = [];
  before(async () => {
    broker = await startMosquitto({ name: 'sensors' });
    sensor = await connectAsync(broker.url, { clientId: 'sensor', reconnectPeriod: 200 });
  });
  after(async () => {
    await Promise.all(runs.map((r) => r.stop()));
    await sensor?.endAsync(true);
    await broker?.stop();
  });
  const start = (details: object): HandlerRun => {
    const r = runMqttHandler({ brokerUrl: broker.url, ...details });
    runs.push(r);
    return r;
  };
  const pub = (topic: string, payload: object | string, retain = true) =>
    sensor.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), {
      qos: 1,
      retain,
    });

  it('lists retained Home Assistant entities of one device once, as one Device, and follows state, availability and removal', async () => {
    await pub('homeassistant/light/kitchen/config', kitchen);
    await pub('homeassistant/sensor/kitchen/temp/config', kitchenTemp);
    const r = start({ conventions: ['homeassistant'] });
    await waitFor('the first list', () => r.lists.length > 0);
    assert.equal(r.lists[0]?.length, 1, 'two retained entities, one device, in the first list');
    const [device] = r.lists[0] ?? [];
    assert.equal(device?.id, 'homeassistant:id:kitchen-1');
    assert.equal(device?.properties.MQTT_MANUFACTURER, 'Bla electronics');
    assert.equal(device?.properties.MQTT_MODEL, 'xya');
    assert.deepEqual(JSON.parse(device?.properties.MQTT_STATE_TOPICS ?? ''), [
      'kitchen/light/state',
      'kitchen/climate',
    ]);
    assert.deepEqual(JSON.parse(device?.properties.MQTT_COMMANDS ?? ''), ['kitchen']);

    await pub('kitchen/climate', { temperature: 21.5 }, false);
    await waitFor('a reading', () => r.data.length > 0);
    const reading = JSON.parse(r.data[0]?.payload ?? '') as { ts: number; values: object };
    assert.equal(r.data[0]?.id, 'homeassistant:id:kitchen-1');
    assert.deepEqual(reading.values, { temp: 21.5 });
    assert.equal(typeof reading.ts, 'number');

    await pub('kitchen/light/status', 'offline');
    await waitFor('offline', () => r.states.at(-1)?.state === 'offline');
    await pub('kitchen/light/status', 'online');
    await waitFor('online again', () => r.states.at(-1)?.state === 'online');

    // A pod's command goes to the entity's command topic on the sensor broker.
    const got: string[] = [];
    await sensor.subscribeAsync('kitchen/light/set', { qos: 1 });
    sensor.on('message', (topic, payload) => {
      if (topic === 'kitchen/light/set') got.push(payload.toString());
    });
    r.command('homeassistant:id:kitchen-1', 'kitchen', 'ON');
    await waitFor('the command at cmd_t', () => got.includes('ON'));

    await pub('homeassistant/light/kitchen/config', '');
    await pub('homeassistant/sensor/kitchen/temp/config', '');
    await waitFor('the device gone', () => r.last().length === 0);
    assert.ok(
      r.lists.every((l) => l.length <= 1),
      'the device never appeared twice',
    );
  });

  it('reads device-based discovery (cmps) as one Device', async () => {
    const r = start({ conventions: ['homeassistant'], prefixes: { homeassistant: 'ha2' } });
    await waitFor('the first list', () => r.lists.length > 0);
    await pub('ha2/device/plug7/config', {
      dev: { ids: 'plug7', name: 'Plug', mf: 'Acme', sn: 'SN7' },
      o: { name: 'acme2mqtt' },
      cmps: {
        power: { p: 'sensor', val_tpl: '{{ value_json.power }}' },
        relay: { p: 'switch', cmd_t: 'plug7/relay/set', val_tpl: '{{ value_json.relay }}' },
      },
      stat_t: 'plug7/state',
    });
    await waitFor('the plug', () => r.last().length === 1);
    assert.equal(r.last()[0]?.properties.MQTT_ATTR_SERIAL_NUMBER, 'SN7');
    await pub('plug7/state', { power: 12, relay: 'ON' }, false);
    await waitFor('its reading', () => r.data.some((d) => d.payload.includes('"power":12')));
    await pub('ha2/device/plug7/config', '');
    await waitFor('the plug gone', () => r.last().length === 0);
  });

  it('survives hostile payloads and ids: one log line per topic, safe Device ids, no crash', async () => {
    const r = start({ conventions: ['homeassistant'], prefixes: { homeassistant: 'ha3' } });
    await waitFor('the first list', () => r.lists.length > 0);
    for (let i = 0; i < 20; i++) await pub('ha3/sensor/bad/config', '{not json', false);
    await pub('ha3/sensor/big/config', `{"x":"${'y'.repeat(100_000)}"}`, false);
    const hostileIds = ['../../etc/passwd', 'a/+/#', 'nul\u0000x', 'z'.repeat(10_000)];
    for (const [i, id] of hostileIds.entries())
      await pub(`ha3/sensor/h${i}/config`, { stat_t: `hostile/${i}`, dev: { ids: id } }, false);
    await waitFor('the hostile devices', () => r.last().length === hostileIds.length);
    for (const d of r.last()) {
      assert.match(d.id, /^[A-Za-z0-9._:-]{1,96}$/);
      assert.ok(!d.properties.MQTT_DEVICE_KEY?.includes('\u0000'));
    }
    const badLines = r.logs.filter((l) => l.topic === 'ha3/sensor/bad/config');
    assert.equal(badLines.length, 1, 'twenty bad messages on one topic, one line');
    assert.ok(
      r.logs.some((l) => l.topic === 'ha3/sensor/big/config'),
      'the oversized one is logged',
    );
    for (const [i] of hostileIds.entries()) await pub(`ha3/sensor/h${i}/config`, '', false);
    await waitFor('the hostile devices gone', () => r.last().length === 0);
  });

  it('keeps every announced device through a broker restart, and lists none twice', async () => {
    await pub('ha4/sensor/keep/config', { stat_t: 'keep/state', dev: { ids: 'keep-1' } });
    const r = start({ conventions: ['homeassistant'], prefixes: { homeassistant: 'ha4' } });
    await waitFor('the device', () => r.last().length === 1);
    const listsBefore = r.lists.length;
    await broker.restart();
    await waitFor('the sensor back', () => sensor.connected);
    // The handler reconnects on its own schedule: send until a reading gets through.
    const got = () =>
      r.data.some((d) => d.id === 'homeassistant:id:keep-1' && d.payload.includes('"keep":7'));
    for (let i = 0; i < 100 && !got(); i++) {
      await pub('keep/state', '7', false);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(got(), 'a reading after the restart');
    assert.equal(r.lists.length, listsBefore, 'no list since: nothing deleted, nothing added');
    await pub('ha4/sensor/keep/config', '');
  });

  it('serves `edgebridge scan mqtt`: the retained announcements, listed once', async () => {
    await pub('ha6/sensor/scan/config', {
      stat_t: 'scan/state',
      dev: { ids: 'scan-1', mf: 'Acme' },
    });
    const cli = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
    const details = JSON.stringify({ brokerUrl: broker.url, prefixes: { homeassistant: 'ha6' } });
    const { stdout } = await promisify(execFile)(process.execPath, [
      cli,
      'scan',
      'mqtt',
      '--details',
      details,
      '-o',
      'json',
      '--timeout',
      '20',
    ]);
    const listed = JSON.parse(stdout) as {
      items: { id: string; properties: Record<string, string> }[];
    };
    assert.deepEqual(
      listed.items.map((d) => [d.id, d.properties.MQTT_MANUFACTURER]),
      [['homeassistant:id:scan-1', 'Acme']],
    );
    await pub('ha6/sensor/scan/config', '');
  });

  it('turns pattern topics into devices and readings', async () => {
    const r = start({
      conventions: ['homeassistant'],
      prefixes: { homeassistant: 'ha5' },
      patterns: ['plain/{room}/{id}/{metric}'],
    });
    await waitFor('the first list', () => r.lists.length > 0);
    await pub('plain/attic/t9/temperature', '19.5', false);
    await waitFor('the pattern device', () => r.last().length === 1);
    assert.equal(r.last()[0]?.id, 'patterns:t9');
    assert.equal(r.last()[0]?.properties.MQTT_ATTR_ROOM, 'attic');
    await waitFor('its reading', () =>
      r.data.some((d) => d.id === 'patterns:t9' && d.payload.includes('"temperature":19.5')),
    );
  });
});
