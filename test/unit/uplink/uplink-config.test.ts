import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import {
  checkSpoolRoom,
  spoolBytesForOneMessage,
  uplinkConfigFrom,
} from '../../../src/uplink/config.ts';
import { recordSize } from '../../../src/spool/record.ts';
import { UplinkConfigError } from '../../../src/uplink/errors.ts';

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

describe('uplink config: every mistake names its field', () => {
  it('refuses what does not fit, with one message each', () => {
    const cases: [unknown, RegExp][] = [
      ['text', /^uplink configuration: must be an object$/],
      [{ cluster }, /: cloud: is required$/],
      [{ cloud }, /: cluster: is required$/],
      [{ cloud, cluster: 'a/b' }, /: cluster: must be a non-empty name without '\/', '\+' or '#'/],
      [{ cloud, cluster, prefix: 'a/+' }, /: prefix: must be a topic prefix without wildcards/],
      [{ cloud: { url: 'http://h' }, cluster }, /: cloud\.url: scheme http: is not one of mqtt:/],
      [
        { cloud: { url: 'mqtt://h', colour: 1 }, cluster },
        /: cloud\.colour: unknown field \(known: url, clientId/,
      ],
      [
        { cloud: { ...cloud, password: { value: 'x', file: '/f' } }, cluster },
        /: cloud\.password: needs exactly one of value, file, secretKeyRef$/,
      ],
      [
        { cloud: { ...cloud, username: { secretKeyRef: { name: 'n', key: 'k' } } }, cluster },
        /: cloud\.username\.secretKeyRef\.namespace: is required$/,
      ],
      [
        { cloud: { ...cloud, tls: { cert: { file: '/c' } } }, cluster },
        /: cloud\.tls: cert and key go together$/,
      ],
      [
        { cloud: { ...cloud, maxInFlight: 0 }, cluster },
        /: cloud\.maxInFlight: must be at least 1$/,
      ],
      [{ cloud, cluster, topics: {} }, /: topics: must be an array$/],
      [
        { cloud, cluster, topics: [{ filter: 'a/#/b' }] },
        /: topics\[0\]\.filter: .*'#' must be the last level/,
      ],
      [
        { cloud, cluster, topics: [{ filter: 'a', priority: 10 }] },
        /: topics\[0\]\.priority: must be at most 9$/,
      ],
      [
        { cloud, cluster, spool: { onFull: 'later' } },
        /: spool\.onFull: must be one of "block", "drop-oldest"$/,
      ],
      [
        { cloud, cluster, spool: { maxBytes: '12 parsecs' } },
        /: spool\.maxBytes: must be a size such as 268435456 or 256Mi/,
      ],
      [{ cloud, cluster, spool: { maxBytes: true } }, /: spool\.maxBytes: must be a size/],
      [{ cloud, cluster, spool: { maxBytes: 1.5 } }, /: spool\.maxBytes: must be a size/],
      [{ cloud, cluster, downlink: { enabled: 'yes' } }, /: downlink\.enabled: must be a boolean$/],
      [{ cloud, cluster, nodeBroker: {} }, /: nodeBroker\.url: is required$/],
    ];
    for (const [doc, message] of cases) {
      assert.throws(
        () => uplinkConfigFrom(doc, '/state'),
        (err: unknown) => {
          assert.ok(err instanceof UplinkConfigError, String(err));
          assert.equal(err.code, 'EDGEBRIDGE_UPLINK_CONFIG');
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });

  it('fills in the defaults, also of sections left out, and reads sizes with units', () => {
    assert.deepEqual(uplinkConfigFrom({ cloud, cluster, spool: { maxBytes: '64Mi' } }, '/state'), {
      cloud: { url: cloud.url, keepaliveSeconds: 30, maxInFlight: 1000 },
      cluster,
      prefix: 'edgebridge/{cluster}/{node}',
      discoveries: true,
      topics: [],
      spool: {
        dir: '/state/uplink-spool',
        maxBytes: 64 * 1024 ** 2,
        onFull: 'block',
        sync: { sync: 'group' },
      },
      downlink: { enabled: false, maxPayloadBytes: 65536 },
    });
    const c = uplinkConfigFrom({ cloud, cluster, downlink: { maxPayloadBytes: '1 kB' } }, '/state');
    assert.equal(c.downlink.maxPayloadBytes, 1000);
    assert.equal(c.spool.maxBytes, 256 * 1024 ** 2);
  });
});
