import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConventionPayloadError,
  type ConventionUpdate,
} from '../../../discovery-handlers/mqtt/convention.ts';
import { SparkplugConvention } from '../../../discovery-handlers/mqtt/conventions/sparkplug.ts';
import { bdSeq, decodePayload, encodePayload } from '../../peers/fixtures/sparkplug-payloads.ts';

const sparkplug = (maxDevices?: number) =>
  new SparkplugConvention({
    prefix: 'spBv1.0',
    ...(maxDevices === undefined ? {} : { maxDevices }),
  });
const summary = (updates: ConventionUpdate[]) =>
  updates.map((u) =>
    u.kind === 'device'
      ? `device ${u.device.key}`
      : u.kind === 'availability'
        ? `${u.key} ${u.online ? 'online' : 'offline'}`
        : u.kind === 'send'
          ? 'send'
          : `${u.kind} ${u.key}`,
  );

// The spec's session: NBIRTH (bdSeq, Node Control/Rebirth, a node metric), then a DBIRTH binding aliases.
const nbirth = (seq: number) =>
  encodePayload(
    [
      bdSeq(seq),
      { name: 'Node Control/Rebirth', datatype: 11, boolean_value: false },
      { name: 'Supply Voltage', alias: 1, datatype: 9, float_value: 23.5 },
    ],
    { seq: 0 },
  );
const dbirth = encodePayload(
  [
    { name: 'Inputs/Pressure', alias: 10, datatype: 10, double_value: 3.25 },
    { name: 'Outputs/Run', alias: 11, datatype: 11, boolean_value: true },
    { name: 'Count', alias: 12, datatype: 3, int_value: -5 >>> 0 },
    { name: 'Serial', alias: 13, datatype: 12, string_value: 'P-0042' },
  ],
  { seq: 1 },
);

function bornSession(c: SparkplugConvention): void {
  c.handle('spBv1.0/Plant1/NBIRTH/Edge1', nbirth(3));
  c.handle('spBv1.0/Plant1/DBIRTH/Edge1/Pump1', dbirth);
}

describe('the Sparkplug B convention', () => {
  it('announces the edge node (it has a metric of its own) and its device from their births', () => {
    const c = sparkplug();
    assert.deepEqual(c.filters(), ['spBv1.0/#']);
    const node = c.handle('spBv1.0/Plant1/NBIRTH/Edge1', nbirth(3));
    assert.deepEqual(summary(node), [
      'device Plant1/Edge1',
      'Plant1/Edge1 online',
      'reading Plant1/Edge1',
    ]);
    assert.deepEqual(node[0]?.kind === 'device' ? node[0].device : undefined, {
      key: 'Plant1/Edge1',
      name: 'Edge1',
      attributes: { group: 'Plant1', edge_node: 'Edge1' },
      stateTopics: ['spBv1.0/Plant1/NDATA/Edge1'],
      commands: ['Node_Control/Rebirth', 'Supply_Voltage'],
    });
    assert.deepEqual(node[2], {
      kind: 'reading',
      key: 'Plant1/Edge1',
      values: { 'Node Control/Rebirth': false, 'Supply Voltage': 23.5 },
      ts: 1_700_000_000_000,
    });
    const device = c.handle('spBv1.0/Plant1/DBIRTH/Edge1/Pump1', dbirth);
    assert.deepEqual(summary(device), [
      'device Plant1/Edge1/Pump1',
      'Plant1/Edge1/Pump1 online',
      'reading Plant1/Edge1/Pump1',
    ]);
    assert.deepEqual(device[2], {
      kind: 'reading',
      key: 'Plant1/Edge1/Pump1',
      values: { 'Inputs/Pressure': 3.25, 'Outputs/Run': true, Count: -5, Serial: 'P-0042' },
      ts: 1_700_000_000_000,
    });
  });

  it('does not make a device of an edge node with only bdSeq and Node Control metrics', () => {
    const c = sparkplug();
    const gateway = encodePayload([
      bdSeq(0),
      { name: 'Node Control/Rebirth', datatype: 11, boolean_value: false },
    ]);
    assert.deepEqual(c.handle('spBv1.0/G/NBIRTH/Gw', gateway), []);
    assert.deepEqual(summary(c.handle('spBv1.0/G/DBIRTH/Gw/Meter', dbirth)).slice(0, 1), [
      'device G/Gw/Meter',
    ]);
  });

  it('applies the aliases of the births to DATA that carries aliases only', () => {
    const c = sparkplug();
    bornSession(c);
    const ddata = encodePayload(
      [
        { alias: 10, timestamp: 1_700_000_000_500, datatype: 10, double_value: 4.5 },
        { alias: 12, datatype: 3, int_value: 7 },
        { alias: 99, datatype: 3, int_value: 1 },
      ],
      { seq: 2, timestamp: 1_700_000_000_600 },
    );
    assert.deepEqual(c.handle('spBv1.0/Plant1/DDATA/Edge1/Pump1', ddata), [
      {
        kind: 'reading',
        key: 'Plant1/Edge1/Pump1',
        values: { 'Inputs/Pressure': 4.5, Count: 7 },
        ts: 1_700_000_000_600,
      },
    ]);
    assert.deepEqual(
      c.handle('spBv1.0/Plant1/NDATA/Edge1', encodePayload([{ alias: 1, float_value: 24 }])),
      [
        {
          kind: 'reading',
          key: 'Plant1/Edge1',
          values: { 'Supply Voltage': 24 },
          ts: 1_700_000_000_000,
        },
      ],
    );
    // DATA from a device never born is not trusted: the node is asked for its births (once).
    const asked = c.handle('spBv1.0/Plant1/DDATA/Edge1/Pump2', ddata);
    assert.deepEqual(summary(asked), ['send']);
    assert.deepEqual(c.handle('spBv1.0/Plant1/DDATA/Edge1/Pump2', ddata), []);
  });

  it('ignores an NDEATH whose bdSeq is not the current birth’s; a matching one takes node and devices away', () => {
    const c = sparkplug();
    c.handle('spBv1.0/Plant1/NBIRTH/Edge1', nbirth(2));
    // The node reconnected: its new birth has bdSeq 3, and the broker delivers the old session's will late.
    c.handle('spBv1.0/Plant1/NBIRTH/Edge1', nbirth(3));
    c.handle('spBv1.0/Plant1/DBIRTH/Edge1/Pump1', dbirth);
    assert.deepEqual(c.handle('spBv1.0/Plant1/NDEATH/Edge1', encodePayload([bdSeq(2)])), []);
    assert.deepEqual(summary(c.handle('spBv1.0/Plant1/NDEATH/Edge1', encodePayload([bdSeq(3)]))), [
      'Plant1/Edge1/Pump1 offline',
      'removed Plant1/Edge1/Pump1',
      'Plant1/Edge1 offline',
      'removed Plant1/Edge1',
    ]);
    // The node is gone: its devices' DATA is not read (the node is asked to rebirth instead).
    assert.deepEqual(
      summary(
        c.handle(
          'spBv1.0/Plant1/DDATA/Edge1/Pump1',
          encodePayload([{ alias: 10, double_value: 1 }]),
        ),
      ),
      ['send'],
    );
  });

  it('takes a device away on DDEATH and keeps the node', () => {
    const c = sparkplug();
    bornSession(c);
    assert.deepEqual(
      summary(c.handle('spBv1.0/Plant1/DDEATH/Edge1/Pump1', encodePayload([], { seq: 5 }))),
      ['Plant1/Edge1/Pump1 offline', 'removed Plant1/Edge1/Pump1'],
    );
    assert.equal(
      c.handle('spBv1.0/Plant1/NDATA/Edge1', encodePayload([{ alias: 1, float_value: 1 }])).length,
      1,
    );
  });

  it('asks a node it has no birth for to rebirth (NCMD Node Control/Rebirth), once until it is born', () => {
    const c = sparkplug();
    // This agent started after the node's births: DATA comes first.
    const ndata = encodePayload([{ alias: 1, float_value: 24 }], { seq: 7 });
    const [ask, ...more] = c.handle('spBv1.0/Plant1/NDATA/Edge1', ndata);
    assert.equal(more.length, 0);
    assert.equal(ask?.kind === 'send' ? ask.topic : undefined, 'spBv1.0/Plant1/NCMD/Edge1');
    const metric = (
      decodePayload(ask?.kind === 'send' ? ask.payload : Buffer.alloc(0)).metrics as Record<
        string,
        unknown
      >[]
    )[0];
    assert.equal(metric?.name, 'Node Control/Rebirth');
    assert.equal(metric?.datatype, 11);
    assert.equal(metric?.boolean_value, true);
    assert.deepEqual(c.handle('spBv1.0/Plant1/DDATA/Edge1/Pump1', ndata), []);
    assert.deepEqual(c.handle('spBv1.0/Plant1/DBIRTH/Edge1/Pump1', dbirth), []);
    // Garbage from an unknown node is refused, not answered with a request.
    assert.throws(
      () => c.handle('spBv1.0/Plant1/NDATA/Edge9', Buffer.from([0xff, 0xff])),
      ConventionPayloadError,
    );
    // Born: DATA is read; after its death, DATA again asks for a rebirth.
    bornSession(c);
    assert.equal(summary(c.handle('spBv1.0/Plant1/NDATA/Edge1', ndata))[0], 'reading Plant1/Edge1');
    c.handle('spBv1.0/Plant1/NDEATH/Edge1', encodePayload([bdSeq(3)]));
    assert.deepEqual(summary(c.handle('spBv1.0/Plant1/NDATA/Edge1', ndata)), ['send']);
  });

  it('ignores host STATE messages and commands on the wire', () => {
    const c = sparkplug();
    bornSession(c);
    assert.deepEqual(
      c.handle('spBv1.0/STATE/scada-host', Buffer.from('{"online":true,"timestamp":1}')),
      [],
    );
    assert.deepEqual(
      c.handle(
        'spBv1.0/Plant1/DCMD/Edge1/Pump1',
        encodePayload([{ name: 'Outputs/Run', boolean_value: false }]),
      ),
      [],
    );
  });

  it('encodes DCMD and NCMD with the metric’s datatype, as a decodable Sparkplug payload', () => {
    const c = sparkplug();
    bornSession(c);
    const dcmd = c.command('Plant1/Edge1/Pump1', 'Outputs/Run', Buffer.from('false'));
    assert.equal(dcmd?.topic, 'spBv1.0/Plant1/DCMD/Edge1/Pump1');
    assert.equal(dcmd.retain, false);
    const metric = (
      decodePayload(dcmd.payload ?? Buffer.alloc(0)).metrics as Record<string, unknown>[]
    )[0];
    assert.deepEqual(
      { ...metric, timestamp: undefined },
      {
        name: 'Outputs/Run',
        timestamp: undefined,
        datatype: 11,
        boolean_value: false,
        value: 'boolean_value',
      },
    );
    const count = c.command('Plant1/Edge1/Pump1', 'Count', Buffer.from('-3'));
    const countMetric = (
      decodePayload(count?.payload ?? Buffer.alloc(0)).metrics as Record<string, unknown>[]
    )[0];
    assert.equal(countMetric?.int_value, -3 >>> 0);
    const rebirth = c.command('Plant1/Edge1', 'Node_Control/Rebirth', Buffer.from('true'));
    assert.equal(rebirth?.topic, 'spBv1.0/Plant1/NCMD/Edge1');
    const rebirthMetric = (
      decodePayload(rebirth?.payload ?? Buffer.alloc(0)).metrics as Record<string, unknown>[]
    )[0];
    assert.equal(rebirthMetric?.name, 'Node Control/Rebirth');
    assert.equal(rebirthMetric?.boolean_value, true);
    assert.equal(c.command('Plant1/Edge1/Pump1', 'No Such Metric', Buffer.from('1')), undefined);
    assert.equal(c.command('Plant1/Edge1', 'bdSeq', Buffer.from('1')), undefined);
    // A value that is not JSON of the metric's type goes nowhere (the handler logs the drop).
    assert.equal(c.command('Plant1/Edge1/Pump1', 'Count', Buffer.from('"many"')), undefined);
    assert.equal(c.command('Plant1/Edge1/Pump1', 'Count', Buffer.from('3000000000')), undefined);
    assert.equal(
      c.command('Plant1/Edge1/Pump1', 'Outputs/Run', Buffer.from('not json')),
      undefined,
    );
  });

  it('turns every datatype into JSON: signed and 64-bit integers, arrays, data sets, nulls', () => {
    const c = sparkplug();
    c.handle('spBv1.0/G/NBIRTH/N', encodePayload([bdSeq(0)]));
    const boolBits = Buffer.from([5, 0, 0, 0, 0b10110000]);
    const updates = c.handle(
      'spBv1.0/G/DBIRTH/N/D',
      encodePayload([
        { name: 'i8', datatype: 1, int_value: 0xff },
        { name: 'i16', datatype: 2, int_value: 0xfffe },
        { name: 'u32', datatype: 7, int_value: 4_000_000_000 },
        { name: 'i64', datatype: 4, long_value: '18446744073709551615' },
        { name: 'u64', datatype: 8, long_value: '18446744073709551615' },
        { name: 'dt', datatype: 13, long_value: 1_700_000_000_000 },
        { name: 'nan', datatype: 10, double_value: Number.NaN },
        { name: 'none', datatype: 12, is_null: true },
        { name: 'bytes', datatype: 17, bytes_value: Buffer.from([1, 2, 3]) },
        { name: 'i16a', datatype: 23, bytes_value: Buffer.from([0xff, 0xff, 0x02, 0x00]) },
        { name: 'f64a', datatype: 31, bytes_value: Buffer.alloc(8) },
        { name: 'boola', datatype: 32, bytes_value: boolBits },
        { name: 'stra', datatype: 33, bytes_value: Buffer.from('ab\0cd\0') },
        {
          name: 'ds',
          datatype: 16,
          dataset_value: {
            num_of_columns: 2,
            columns: ['a', 'b'],
            types: [3, 12],
            rows: [{ elements: [{ int_value: 1 }, { string_value: 'x' }] }],
          },
        },
      ]),
    );
    const reading = updates.find((u) => u.kind === 'reading');
    assert.deepEqual(reading?.kind === 'reading' ? reading.values : undefined, {
      i8: -1,
      i16: -2,
      u32: 4_000_000_000,
      i64: -1,
      u64: '18446744073709551615',
      dt: 1_700_000_000_000,
      nan: null,
      none: null,
      bytes: 'AQID',
      i16a: [-1, 2],
      f64a: [0],
      boola: [true, false, true, true, false],
      stra: ['ab', 'cd'],
      ds: { columns: ['a', 'b'], rows: [[1, 'x']] },
    });
  });

  it('refuses protobuf garbage and oversized payloads with a payload error, and caps nodes and devices', () => {
    const c = sparkplug(3);
    for (const garbage of [
      Buffer.from([0xff, 0xff, 0xff]),
      Buffer.from('{"json":true}'),
      Buffer.alloc(2 * 1024 * 1024),
    ]) {
      assert.throws(() => c.handle('spBv1.0/G/NBIRTH/N', garbage), ConventionPayloadError);
    }
    bornSession(c);
    assert.throws(
      () => c.handle('spBv1.0/Plant1/DBIRTH/Edge1/Pump2', dbirth),
      ConventionPayloadError,
    );
    c.handle('spBv1.0/Plant1/DDEATH/Edge1/Pump1', encodePayload([]));
    assert.equal(
      summary(c.handle('spBv1.0/Plant1/DBIRTH/Edge1/Pump2', dbirth))[0],
      'device Plant1/Edge1/Pump2',
    );
  });
});
