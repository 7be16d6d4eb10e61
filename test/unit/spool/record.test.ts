import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_PROPERTIES_BYTES,
  RECORD_OVERHEAD,
  checksum,
  recordSize,
  toRecord,
} from '../../../src/spool/record.ts';
import { SpoolInvalidArgumentError } from '../../../src/spool/errors.ts';

const input = {
  id: 'cam-1',
  key: 'cam',
  topic: 'edgebridge/v1/default/cam/data',
  payload: Buffer.from('frame'),
  timestamp: 1_700_000_000_000,
};

describe('spool records', () => {
  it('accounts payload and metadata bytes (UTF-8) plus a fixed overhead', () => {
    assert.equal(recordSize(input), RECORD_OVERHEAD + 5 + 3 + 30 + 5);
    assert.equal(recordSize({ ...input, key: 'é' }), RECORD_OVERHEAD + 5 + 2 + 30 + 5);
  });

  it('checksums every field a reader sees', () => {
    const base = toRecord(input, 0);
    const variants = [
      { ...input, id: 'cam-2' },
      { ...input, key: 'cay' },
      { ...input, topic: 'edgebridge/v1/default/cam/dat4' },
      { ...input, payload: Buffer.from('frbme') },
      { ...input, timestamp: input.timestamp + 1 },
      { ...input, expiresAt: 1 },
      { ...input, priority: 1 },
      { ...input, userProperties: [['a', 'b']] as [string, string][] },
      { ...input, contentType: 'text/plain' },
    ];
    for (const v of variants) assert.notEqual(toRecord(v, 0).crc, base.crc, JSON.stringify(v));
    assert.equal(checksum(base), base.crc);
  });

  it('accounts and checksums MQTT 5 properties, and refuses bad or oversized ones', () => {
    const withProps = toRecord(
      { ...input, userProperties: [['unit', '°C']], contentType: 'text/plain' },
      0,
    );
    assert.equal(withProps.properties, '{"u":[["unit","°C"]],"c":"text/plain"}');
    assert.equal(
      withProps.size,
      toRecord(input, 0).size + Buffer.byteLength(withProps.properties ?? ''),
    );
    assert.notEqual(
      toRecord({ ...input, userProperties: [['unit', '°F']], contentType: 'text/plain' }, 0).crc,
      withProps.crc,
    );
    // No properties (or an empty list) stores nothing: such records checksum as before.
    assert.equal(toRecord({ ...input, userProperties: [] }, 0).properties, undefined);
    for (const bad of [
      { userProperties: [['a']] },
      { userProperties: { a: 'b' } },
      { contentType: 3 },
      { userProperties: [['a', 'x'.repeat(MAX_PROPERTIES_BYTES)]] },
    ]) {
      assert.throws(
        () => toRecord({ ...input, ...bad } as never, 2),
        (err) => err instanceof SpoolInvalidArgumentError && err.message.startsWith('message 2:'),
      );
    }
  });

  it('generates a unique id when none is given, and keeps a given one', () => {
    const unnamed: Omit<typeof input, 'id'> & { id?: string } = { ...input };
    delete unnamed.id;
    const a = toRecord(unnamed, 0);
    const b = toRecord(unnamed, 0);
    assert.notEqual(a.id, b.id);
    assert.equal(toRecord(input, 0).id, 'cam-1');
  });

  it('takes a Uint8Array payload as a Buffer over the same bytes', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const r = toRecord({ ...input, payload: bytes as Buffer }, 0);
    assert.ok(Buffer.isBuffer(r.payload));
    assert.deepEqual([...r.payload], [1, 2, 3]);
  });

  it('names the message and field that is wrong', () => {
    assert.throws(
      () => toRecord({ ...input, timestamp: Number.NaN }, 3),
      (err: unknown) =>
        err instanceof SpoolInvalidArgumentError && /message 3: timestamp/.test(err.message),
    );
  });
});
