import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import {
  checkSpoolRoom,
  spoolBytesForOneMessage,
  uplinkConfigFrom,
} from '../../../src/dataplane/uplink/config.ts';
import { recordSize } from '../../../src/spool/record.ts';
import { UplinkConfigError } from '../../../src/dataplane/uplink/errors.ts';

const cloud = { url: 'mqtt://127.0.0.1:1883' };
const cluster = 'c1';

describe('uplink config: the spool section', () => {
  it('defaults to group commit that commits when producers wait', () => {
    const { spool } = uplinkConfigFrom({ cloud, cluster }, '/state');
    assert.deepEqual(spool.sync, { sync: 'group' });
    assert.equal(spool.dir, '/state/uplink-spool');
  });

  it('takes the group-commit interval, size and groupWhenIdle', () => {
    const { spool } = uplinkConfigFrom(
      {
        cloud,
        cluster,
        spool: { groupIntervalMs: 50, groupMaxMessages: 200, groupWhenIdle: false },
      },
      '/state',
    );
    assert.deepEqual(spool.sync, {
      sync: 'group',
      intervalMs: 50,
      maxMessages: 200,
      whenIdle: false,
    });
  });

  it('names the field of a bad value', () => {
    assert.throws(
      () => uplinkConfigFrom({ cloud, cluster, spool: { groupWhenIdle: 'no' } }, '/state'),
      (err: unknown) =>
        err instanceof UplinkConfigError && err.message.includes('spool.groupWhenIdle'),
    );
    assert.throws(
      () => uplinkConfigFrom({ cloud, cluster, spool: { groupIntervalMs: -1 } }, '/state'),
      (err: unknown) =>
        err instanceof UplinkConfigError && err.message.includes('spool.groupIntervalMs'),
    );
  });
});

describe('uplink config: spool.maxBytes against the largest message', () => {
  const withMaxBytes = (maxBytes: number) =>
    uplinkConfigFrom({ cloud, cluster, spool: { maxBytes } }, '/state');

  it('refuses a spool that cannot hold one message of the largest packet, naming the field and the minimum', () => {
    const need = spoolBytesForOneMessage(1024 * 1024);
    assert.ok(need > 1024 * 1024);
    for (const maxBytes of [1, 1000, 1024 * 1024, need - 1]) {
      assert.throws(
        () => checkSpoolRoom(withMaxBytes(maxBytes), 1024 * 1024),
        (err: unknown) =>
          err instanceof UplinkConfigError &&
          err.code === 'EDGEBRIDGE_UPLINK_CONFIG' &&
          err.message.includes('spool.maxBytes') &&
          err.message.includes(`at least ${need} bytes`),
      );
    }
    checkSpoolRoom(withMaxBytes(need), 1024 * 1024);
  });

  it('follows the node broker packet limit', () => {
    const small = spoolBytesForOneMessage(4096);
    checkSpoolRoom(withMaxBytes(small), 4096);
    assert.throws(() => checkSpoolRoom(withMaxBytes(small), 8192), UplinkConfigError);
  });

  it('the minimum holds the largest record the spool can be given', () => {
    // A topic-rule message: the topic is its key too; a 65,535-byte topic fills the packet's topic.
    const max = 1024 * 1024;
    const topic = 'x'.repeat(65535);
    const record = {
      id: randomUUID(),
      key: topic,
      topic,
      payload: new Uint8Array(max - 65535),
    };
    assert.equal(recordSize(record), spoolBytesForOneMessage(max));
  });
});
