import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectAsync, type MqttClient } from 'mqtt';
import { sensorDeviceId } from '../../discovery-handlers/mqtt/device-id.ts';
import { startMosquitto, type Mosquitto } from '../harness/mosquitto.ts';
import { waitFor } from '../harness/mqtt-peers.ts';
import { runMqttHandler, type HandlerRun } from './fixtures/mqtt-handler-run.ts';
import { bdSeq, decodePayload, encodePayload } from './fixtures/sparkplug-payloads.ts';

// The mqtt handler in this process against a real mosquitto on loopback,
// with sensors (MQTT clients of that broker) speaking Homie, Zigbee2MQTT,
// Tasmota and Sparkplug B as their documentation shows: announcement ->
// listed Device, reading -> data, availability -> state, a pod's command ->
// the sensor's own command topic, withdrawal -> gone from the list.

const listed = (run: HandlerRun, id: string) => run.last().some((d) => d.id === id);
const TIMEOUT = 15_000;

describe('the mqtt conventions through the handler, against mosquitto', () => {
  let broker: Mosquitto;
  const clients: MqttClient[] = [];
  const runs: HandlerRun[] = [];
  const sensor = async (clientId: string, will?: { topic: string; payload: Buffer }) => {
    const c = await connectAsync(broker.url, {
      clientId,
      reconnectPeriod: 0,
      ...(will === undefined ? {} : { will: { ...will, qos: 1, retain: false } }),
    });
    clients.push(c);
    return c;
  };
  /** Commands the sensor gets on `filter`, as topic and payload. */
  const inbox = async (c: MqttClient, filter: string) => {
    const got: { topic: string; payload: Buffer }[] = [];
    c.on('message', (topic, payload) => got.push({ topic, payload }));
    await c.subscribeAsync(filter, { qos: 1 });
    return got;
  };
  const handler = (conventions: string[]) => {
    const run = runMqttHandler({ brokerUrl: broker.url, conventions, maxPayloadBytes: 1_048_576 });
    runs.push(run);
    return run;
  };

  before(async () => {
    broker = await startMosquitto({ name: 'sensors', persistence: false });
  });
  after(async () => {
    await Promise.all(runs.map((r) => r.stop()));
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await broker?.stop();
  });

  it('Homie 5: $description and $state, property values, /set commands, removal by clearing $state', async () => {
    const dev = await sensor('homie-thermo');
    const retained = { qos: 1, retain: true } as const;
    await dev.publishAsync('homie/5/thermo/$state', 'init', retained);
    await dev.publishAsync(
      'homie/5/thermo/$description',
      JSON.stringify({
        homie: '5.0',
        version: 1,
        name: 'Hall thermostat',
        nodes: {
          thermostat: {
            name: 'Thermostat',
            properties: {
              temperature: { datatype: 'float', unit: '°C' },
              setpoint: { datatype: 'float', settable: true, unit: '°C' },
            },
          },
        },
      }),
      retained,
    );
    await dev.publishAsync('homie/5/thermo/thermostat/temperature', '21.5', retained);
    await dev.publishAsync('homie/5/thermo/$state', 'ready', retained);
    const sets = await inbox(dev, 'homie/5/thermo/+/+/set');

    const run = handler(['homie']);
    const id = sensorDeviceId('homie', '5/thermo');
    await waitFor('the Homie device listed', () => listed(run, id), TIMEOUT);
    const device = run.last().find((d) => d.id === id);
    assert.equal(device?.properties.MQTT_DEVICE_NAME, 'Hall thermostat');
    assert.deepEqual(JSON.parse(device?.properties.MQTT_COMMANDS ?? '[]'), ['thermostat/setpoint']);
    await waitFor(
      'the retained temperature as a reading',
      () => run.readings(id).length > 0,
      TIMEOUT,
    );
    assert.deepEqual(run.readings(id)[0]?.values, { 'thermostat/temperature': 21.5 });

    run.command(id, 'thermostat/setpoint', '22');
    await waitFor('the command on .../setpoint/set', () => sets.length > 0, TIMEOUT);
    assert.equal(sets[0]?.topic, 'homie/5/thermo/thermostat/setpoint/set');
    assert.equal(sets[0]?.payload.toString(), '22');

    await dev.publishAsync('homie/5/thermo/$state', 'lost', retained);
    await waitFor('the device offline', () => run.state(id) === 'offline', TIMEOUT);
    await dev.publishAsync('homie/5/thermo/$state', '', retained);
    await dev.publishAsync('homie/5/thermo/$description', '', retained);
    await waitFor('the device gone from the list', () => !listed(run, id), TIMEOUT);
  });

  it('Homie 4: $homie, $name, $nodes, $properties and property attributes as retained topics, then removal', async () => {
    const dev = await sensor('homie4-car', {
      topic: 'homie/super-car/$state',
      payload: Buffer.from('lost'),
    });
    const retained = { qos: 1, retain: true } as const;
    const topics: [string, string][] = [
      ['$homie', '4.0.0'],
      ['$name', 'Super car'],
      ['$state', 'init'],
      ['$nodes', 'engine'],
      ['engine/$name', 'Car engine'],
      ['engine/$type', 'V8'],
      ['engine/$properties', 'speed,temperature'],
      ['engine/speed/$datatype', 'integer'],
      ['engine/speed/$settable', 'true'],
      ['engine/temperature/$datatype', 'float'],
      ['engine/temperature', '91.5'],
      ['$state', 'ready'],
    ];
    for (const [topic, payload] of topics)
      await dev.publishAsync(`homie/super-car/${topic}`, payload, retained);
    const sets = await inbox(dev, 'homie/super-car/+/+/set');

    const run = handler(['homie']);
    const id = sensorDeviceId('homie', 'super-car');
    await waitFor(
      'the Homie 4 device listed with its settable property',
      () => run.last().find((d) => d.id === id)?.properties.MQTT_COMMANDS === '["engine/speed"]',
      TIMEOUT,
    );
    await waitFor(
      'the retained temperature as a reading',
      () => run.readings(id).some((r) => r.values['engine/temperature'] === 91.5),
      TIMEOUT,
    );
    run.command(id, 'engine/speed', '80');
    await waitFor('the command on engine/speed/set', () => sets.length > 0, TIMEOUT);
    assert.equal(sets[0]?.topic, 'homie/super-car/engine/speed/set');

    // The car drops off: its last will sets $state lost.
    dev.stream.destroy();
    await waitFor('the car offline by its last will', () => run.state(id) === 'offline', TIMEOUT);
    const admin = await sensor('homie4-admin');
    for (const [topic] of topics)
      await admin.publishAsync(`homie/super-car/${topic}`, '', retained);
    await waitFor('the car gone from the list', () => !listed(run, id), TIMEOUT);
  });

  it('Zigbee2MQTT: bridge/devices, both bridge/state forms, availability, readings, /set, removal', async () => {
    const bridge = await sensor('z2m-bridge');
    const retained = { qos: 1, retain: true } as const;
    const bulb = {
      ieee_address: '0x000b57fffec6a5b2',
      type: 'Router',
      friendly_name: 'hall/bulb',
      definition: {
        vendor: 'IKEA',
        model: 'LED1545G12',
        exposes: [{ type: 'light', features: [{ property: 'state', access: 7 }] }],
      },
    };
    const coordinator = {
      ieee_address: '0x00124b00120144ae',
      type: 'Coordinator',
      friendly_name: 'Coordinator',
    };
    await bridge.publishAsync('zigbee2mqtt/bridge/state', '{"state":"online"}', retained);
    await bridge.publishAsync(
      'zigbee2mqtt/bridge/devices',
      JSON.stringify([coordinator, bulb]),
      retained,
    );
    const sets = await inbox(bridge, 'zigbee2mqtt/+/+/set');

    const run = handler(['zigbee2mqtt']);
    const id = sensorDeviceId('zigbee2mqtt', '0x000b57fffec6a5b2');
    await waitFor('the bulb listed (and only the bulb)', () => listed(run, id), TIMEOUT);
    assert.deepEqual(
      run.last().map((d) => d.id),
      [id],
    );
    assert.equal(run.last()[0]?.properties.MQTT_MANUFACTURER, 'IKEA');

    await bridge.publishAsync(
      'zigbee2mqtt/hall/bulb',
      JSON.stringify({ state: 'ON', linkquality: 120 }),
    );
    await waitFor('the reading', () => run.readings(id).length > 0, TIMEOUT);
    assert.deepEqual(run.readings(id)[0]?.values, { state: 'ON', linkquality: 120 });

    run.command(id, 'state', 'OFF');
    await waitFor('the command on hall/bulb/set', () => sets.length > 0, TIMEOUT);
    assert.equal(sets[0]?.topic, 'zigbee2mqtt/hall/bulb/set');
    assert.deepEqual(JSON.parse(sets[0]?.payload.toString() ?? ''), { state: 'OFF' });

    await bridge.publishAsync(
      'zigbee2mqtt/hall/bulb/availability',
      '{"state":"offline"}',
      retained,
    );
    await waitFor('the bulb offline', () => run.state(id) === 'offline', TIMEOUT);
    await bridge.publishAsync('zigbee2mqtt/hall/bulb/availability', 'online', retained);
    await waitFor('the bulb online (1.x form)', () => run.state(id) === 'online', TIMEOUT);
    await bridge.publishAsync('zigbee2mqtt/bridge/state', 'offline', retained);
    await waitFor('the bulb offline with its bridge', () => run.state(id) === 'offline', TIMEOUT);

    await bridge.publishAsync(
      'zigbee2mqtt/bridge/devices',
      JSON.stringify([coordinator]),
      retained,
    );
    await waitFor('the bulb gone from the list', () => !listed(run, id), TIMEOUT);
  });

  it('Tasmota: discovery config, LWT, SENSOR readings, cmnd commands, removal by an empty config', async () => {
    const plug = await sensor('tasmota-plug', {
      topic: 'tele/plug_1A2B3C/LWT',
      payload: Buffer.from('Offline'),
    });
    const retained = { qos: 1, retain: true } as const;
    const config = {
      ip: '192.168.1.50',
      dn: 'Kitchen Plug',
      fn: ['Kitchen Plug'],
      hn: 'tasmota-1A2B3C-2876',
      mac: 'A4CF121A2B3C',
      md: 'Sonoff Pow R2',
      ofln: 'Offline',
      onln: 'Online',
      sw: '12.5.0',
      t: 'plug_1A2B3C',
      ft: '%prefix%/%topic%/',
      tp: ['cmnd', 'stat', 'tele'],
      rl: [1, 0, 0, 0, 0, 0, 0, 0],
      ver: 1,
    };
    await plug.publishAsync(
      'tasmota/discovery/A4CF121A2B3C/config',
      JSON.stringify(config),
      retained,
    );
    await plug.publishAsync('tele/plug_1A2B3C/LWT', 'Online', retained);
    const commands = await inbox(plug, 'cmnd/plug_1A2B3C/+');

    const run = handler(['tasmota']);
    const id = sensorDeviceId('tasmota', 'A4CF121A2B3C');
    await waitFor('the plug listed', () => listed(run, id), TIMEOUT);
    assert.equal(run.last()[0]?.properties.MQTT_MODEL, 'Sonoff Pow R2');

    // The handler subscribes to the plug's own topics once the config names them.
    await waitFor(
      'a SENSOR reading',
      () => {
        void plug.publishAsync(
          'tele/plug_1A2B3C/SENSOR',
          JSON.stringify({ Time: 'x', ENERGY: { Power: 15 } }),
        );
        return run.readings(id).some((r) => 'ENERGY' in r.values);
      },
      TIMEOUT,
    );
    assert.deepEqual(run.readings(id).find((r) => 'ENERGY' in r.values)?.values, {
      ENERGY: { Power: 15 },
    });

    run.command(id, 'POWER1', 'OFF');
    await waitFor('the command on cmnd/plug_1A2B3C/POWER1', () => commands.length > 0, TIMEOUT);
    assert.equal(commands[0]?.topic, 'cmnd/plug_1A2B3C/POWER1');
    assert.equal(commands[0]?.payload.toString(), 'OFF');

    // The plug drops off the network: its last will says Offline.
    plug.stream.destroy();
    await waitFor('the plug offline by its LWT', () => run.state(id) === 'offline', TIMEOUT);

    const admin = await sensor('tasmota-admin');
    await admin.publishAsync('tasmota/discovery/A4CF121A2B3C/config', '', retained);
    await waitFor('the plug gone from the list', () => !listed(run, id), TIMEOUT);
  });

  it('Sparkplug B: an edge node born, its device born, DDATA by alias, DCMD, a stale NDEATH ignored, a death', async () => {
    const run = handler(['sparkplug']);
    await waitFor('the first (empty) list', () => run.lists.length > 0, TIMEOUT);
    const nodeId = sensorDeviceId('sparkplug', 'Plant1/Edge1');
    const pumpId = sensorDeviceId('sparkplug', 'Plant1/Edge1/Pump1');

    // Session A, bdSeq 0, with its NDEATH as the MQTT will.
    const death = (n: number) => ({
      topic: 'spBv1.0/Plant1/NDEATH/Edge1',
      payload: encodePayload([bdSeq(n)]),
    });
    const sessionA = await sensor('edge1-a', death(0));
    const nbirth = (n: number) =>
      encodePayload(
        [
          bdSeq(n),
          { name: 'Node Control/Rebirth', datatype: 11, boolean_value: false },
          { name: 'Supply Voltage', alias: 1, datatype: 9, float_value: 23.5 },
        ],
        { seq: 0 },
      );
    const dbirth = encodePayload(
      [
        { name: 'Inputs/Pressure', alias: 10, datatype: 10, double_value: 3.25 },
        { name: 'Outputs/Run', alias: 11, datatype: 11, boolean_value: true },
      ],
      { seq: 1 },
    );
    await sessionA.publishAsync('spBv1.0/Plant1/NBIRTH/Edge1', nbirth(0), { qos: 0 });
    await sessionA.publishAsync('spBv1.0/Plant1/DBIRTH/Edge1/Pump1', dbirth, { qos: 0 });
    await waitFor(
      'the edge node and its pump listed',
      () => listed(run, nodeId) && listed(run, pumpId),
      TIMEOUT,
    );
    assert.deepEqual(
      JSON.parse(run.last().find((d) => d.id === pumpId)?.properties.MQTT_COMMANDS ?? '[]'),
      ['Inputs/Pressure', 'Outputs/Run'],
    );

    await sessionA.publishAsync(
      'spBv1.0/Plant1/DDATA/Edge1/Pump1',
      encodePayload([{ alias: 10, datatype: 10, double_value: 4.5 }], { seq: 2 }),
      { qos: 0 },
    );
    await waitFor(
      'the DDATA reading by alias',
      () => run.readings(pumpId).some((r) => r.values['Inputs/Pressure'] === 4.5),
      TIMEOUT,
    );

    const dcmds = await inbox(sessionA, 'spBv1.0/Plant1/DCMD/Edge1/+');
    run.command(pumpId, 'Outputs/Run', 'false');
    await waitFor('the DCMD at the edge node', () => dcmds.length > 0, TIMEOUT);
    const metric = (
      decodePayload(dcmds[0]?.payload ?? Buffer.alloc(0)).metrics as Record<string, unknown>[]
    )[0];
    assert.equal(metric?.name, 'Outputs/Run');
    assert.equal(metric?.boolean_value, false);

    // Session B (a second connection, bdSeq 1) births the node again; then A's socket dies and
    // the broker publishes A's will, NDEATH bdSeq 0: not the current session's death.
    const sessionB = await sensor('edge1-b', death(1));
    await sessionB.publishAsync('spBv1.0/Plant1/NBIRTH/Edge1', nbirth(1), { qos: 0 });
    await sessionB.publishAsync('spBv1.0/Plant1/DBIRTH/Edge1/Pump1', dbirth, { qos: 0 });
    await sessionB.publishAsync(
      'spBv1.0/Plant1/DDATA/Edge1/Pump1',
      encodePayload([{ alias: 10, datatype: 10, double_value: 5.5 }], { seq: 2 }),
      { qos: 0 },
    );
    await waitFor(
      "session B's reading",
      () => run.readings(pumpId).some((r) => r.values['Inputs/Pressure'] === 5.5),
      TIMEOUT,
    );
    const watcher = await sensor('death-watcher');
    const deaths = await inbox(watcher, 'spBv1.0/Plant1/NDEATH/+');
    sessionA.stream.destroy();
    await waitFor("the broker to publish session A's will", () => deaths.length > 0, TIMEOUT);
    // The stale death went through the handler too (same broker, same topic); the node is still there.
    await sessionB.publishAsync(
      'spBv1.0/Plant1/DDATA/Edge1/Pump1',
      encodePayload([{ alias: 10, datatype: 10, double_value: 6.5 }], { seq: 3 }),
      { qos: 0 },
    );
    await waitFor(
      'a reading after the stale death',
      () => run.readings(pumpId).some((r) => r.values['Inputs/Pressure'] === 6.5),
      TIMEOUT,
    );
    assert.equal(run.state(pumpId), 'online');
    assert.ok(listed(run, pumpId) && listed(run, nodeId));

    // Session B dies: its will is the current session's death.
    sessionB.stream.destroy();
    await waitFor('the pump offline', () => run.state(pumpId) === 'offline', TIMEOUT);
    await waitFor(
      'node and pump gone from the list',
      () => !listed(run, pumpId) && !listed(run, nodeId),
      TIMEOUT,
    );
  });

  it('Sparkplug B: a node born before the handler started is asked to rebirth, and is listed once it does', async () => {
    const edge = await sensor('edge2', {
      topic: 'spBv1.0/Plant2/NDEATH/Edge2',
      payload: encodePayload([bdSeq(5)]),
    });
    const birth = () =>
      Promise.all([
        edge.publishAsync(
          'spBv1.0/Plant2/NBIRTH/Edge2',
          encodePayload([
            bdSeq(5),
            { name: 'Node Control/Rebirth', datatype: 11, boolean_value: false },
          ]),
          { qos: 0 },
        ),
        edge.publishAsync(
          'spBv1.0/Plant2/DBIRTH/Edge2/Meter',
          encodePayload([{ name: 'Energy', alias: 1, datatype: 10, double_value: 10 }]),
          { qos: 0 },
        ),
      ]);
    await birth();
    // The edge node answers rebirth requests as the spec says: NBIRTH and every DBIRTH again.
    const ncmds = await inbox(edge, 'spBv1.0/Plant2/NCMD/Edge2');
    edge.on('message', (topic, payload) => {
      const metric = (decodePayload(payload).metrics as Record<string, unknown>[])[0];
      if (
        topic.endsWith('/NCMD/Edge2') &&
        metric?.name === 'Node Control/Rebirth' &&
        metric.boolean_value === true
      ) {
        void birth();
      }
    });

    const run = handler(['sparkplug']);
    await waitFor('the first list', () => run.lists.length > 0, TIMEOUT);
    const meterId = sensorDeviceId('sparkplug', 'Plant2/Edge2/Meter');
    assert.ok(
      !listed(run, meterId),
      'births are not retained: the handler cannot know the meter yet',
    );
    await edge.publishAsync(
      'spBv1.0/Plant2/DDATA/Edge2/Meter',
      encodePayload([{ alias: 1, datatype: 10, double_value: 11 }]),
      { qos: 0 },
    );
    await waitFor('the rebirth request at the node', () => ncmds.length > 0, TIMEOUT);
    await waitFor('the meter listed after its rebirth', () => listed(run, meterId), TIMEOUT);
  });
});
