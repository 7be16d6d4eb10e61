import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { uplinkConfigFrom } from '../../../src/dataplane/uplink/config.ts';
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
