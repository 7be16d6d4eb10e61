import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AccessControl, type Principal } from '../../../src/dataplane/access.ts';
import { parseBrokerConfig } from '../../../src/dataplane/broker-config.ts';
import { BrokerConfigError } from '../../../src/dataplane/errors.ts';

const labels: Record<string, Record<string, string>> = {
  'apps/cam-a': { 'edgebridge.io/discovery': 'cams', zone: 'north' },
  'apps/cam-b': { 'edgebridge.io/discovery': 'cams', zone: 'south' },
};
const lookups: string[] = [];
const access = new AccessControl((ns, name) => {
  lookups.push(`${ns}/${name}`);
  return Promise.resolve(labels[`${ns}/${name}`]);
});

const reader: Principal = {
  name: 'user:reader',
  grants: [{ namespace: 'apps', selector: { matchLabels: { zone: 'north' } }, publish: false }],
};
const writer: Principal = {
  name: 'user:writer',
  grants: [{ namespace: 'apps', names: ['cam-b'], publish: true }],
};
const all: Principal = { name: 'user:all', grants: [{ namespace: 'apps', publish: false }] };

describe('access to device topics', () => {
  it('lets a principal subscribe to the devices its grants select, and no others', async () => {
    assert.deepEqual(await access.canSubscribe(reader, 'edgebridge/v1/apps/cam-a/#'), { ok: true });
    assert.equal((await access.canSubscribe(reader, 'edgebridge/v1/apps/cam-b/#')).ok, false);
    // A Device that does not exist matches no selector.
    assert.equal((await access.canSubscribe(reader, 'edgebridge/v1/apps/cam-z/#')).ok, false);
    assert.equal((await access.canSubscribe(reader, 'edgebridge/v1/other/cam-a/#')).ok, false);
    assert.equal((await access.canSubscribe(writer, 'edgebridge/v1/apps/cam-b/data')).ok, true);
    assert.equal((await access.canSubscribe(writer, 'edgebridge/v1/apps/cam-a/data')).ok, false);
  });

  it('looks up labels only when a selector needs them', async () => {
    lookups.length = 0;
    await access.canSubscribe(writer, 'edgebridge/v1/apps/cam-b/#');
    await access.canSubscribe(all, 'edgebridge/v1/apps/cam-a/#');
    assert.deepEqual(lookups, []);
  });

  it('allows a wildcard device only to a grant of the whole namespace', async () => {
    assert.equal((await access.canSubscribe(all, 'edgebridge/v1/apps/+/state')).ok, true);
    assert.equal((await access.canSubscribe(all, 'edgebridge/v1/apps/#')).ok, true);
    const refused = await access.canSubscribe(reader, 'edgebridge/v1/apps/+/state');
    assert.equal(refused.ok, false);
    assert.match(refused.ok ? '' : refused.reason, /every device in namespace apps/);
    assert.equal((await access.canSubscribe(all, '#')).ok, false);
    assert.equal((await access.canSubscribe(all, '$SYS/#')).ok, false);
  });

  it('lets only publish grants publish, never state and never retained', async () => {
    assert.deepEqual(await access.canPublish(writer, 'edgebridge/v1/apps/cam-b/data/x', false), {
      ok: true,
    });
    assert.equal(
      (await access.canPublish(writer, 'edgebridge/v1/apps/cam-b/events', false)).ok,
      true,
    );
    assert.equal(
      (await access.canPublish(writer, 'edgebridge/v1/apps/cam-b/state', false)).ok,
      false,
    );
    assert.equal(
      (await access.canPublish(writer, 'edgebridge/v1/apps/cam-b/data', true)).ok,
      false,
    );
    assert.equal(
      (await access.canPublish(writer, 'edgebridge/v1/apps/cam-a/data', false)).ok,
      false,
    );
    assert.equal((await access.canPublish(all, 'edgebridge/v1/apps/cam-a/data', false)).ok, false);
    assert.equal((await access.canPublish(writer, 'edgebridge/v1/apps/+/data', false)).ok, false);
    assert.equal((await access.canPublish(writer, 'anything/else', false)).ok, false);
  });

  it('lets a publish grant command its devices, and nobody else command them', async () => {
    const command = (p: Principal, device: string, retain = false) =>
      access.canPublish(p, `edgebridge/v1/apps/${device}/commands/light/set`, retain);
    assert.deepEqual(await command(writer, 'cam-b'), { ok: true });
    assert.equal((await command(writer, 'cam-a')).ok, false);
    assert.equal((await command(reader, 'cam-a')).ok, false);
    assert.equal((await command(writer, 'cam-b', true)).ok, false);
    assert.deepEqual(await access.canSubscribe(writer, 'edgebridge/v1/apps/cam-b/commands/#'), {
      ok: true,
    });
  });

  it('decides a publish at once (no Promise) when no selector needs labels', () => {
    // The broker's hot path: one decision per message.
    assert.deepEqual(access.canPublish(writer, 'edgebridge/v1/apps/cam-b/data', false), {
      ok: true,
    });
  });
});

describe('access to sensor topics', () => {
  const sensor: Principal = {
    name: 'user:sensor',
    grants: [],
    sensorTopics: { publish: ['homeassistant/sensor/+/config', 'tele/#'], subscribe: ['cmnd/#'] },
  };

  it('lets a sensor publish, retained too, only on the topics its grant names', async () => {
    assert.deepEqual(await access.canPublish(sensor, 'homeassistant/sensor/t1/config', true), {
      ok: true,
    });
    assert.equal((await access.canPublish(sensor, 'tele/plug/LWT', true)).ok, true);
    assert.equal((await access.canPublish(sensor, 'tele', false)).ok, true);
    assert.equal(
      (await access.canPublish(sensor, 'homeassistant/light/t1/config', true)).ok,
      false,
    );
    assert.equal((await access.canPublish(sensor, 'homie/5/x/$state', true)).ok, false);
    assert.equal((await access.canPublish(sensor, '$SYS/x', false)).ok, false);
    // Sensor grants never reach device topics.
    assert.equal(
      (await access.canPublish(sensor, 'edgebridge/v1/apps/cam-b/data', false)).ok,
      false,
    );
  });

  it('lets a sensor subscribe only within its grant, and no one to a filter that could reach device topics', async () => {
    assert.equal((await access.canSubscribe(sensor, 'cmnd/plug/POWER')).ok, true);
    assert.equal((await access.canSubscribe(sensor, 'cmnd/+/POWER')).ok, true);
    assert.equal((await access.canSubscribe(sensor, 'cmnd/#')).ok, true);
    assert.equal((await access.canSubscribe(sensor, 'tele/#')).ok, false);
    const everything: Principal = { ...sensor, sensorTopics: { publish: [], subscribe: ['#'] } };
    for (const filter of ['#', '+/v1/apps/cam-a/data', '$SYS/#'])
      assert.equal((await access.canSubscribe(everything, filter)).ok, false, filter);
    assert.equal((await access.canSubscribe(everything, 'edgebridge/v1/apps/cam-a/#')).ok, false);
  });

  it('gives a principal with device grants no sensor topic', async () => {
    for (const p of [all, writer]) {
      assert.equal((await access.canSubscribe(p, 'homeassistant/#')).ok, false);
      assert.equal((await access.canPublish(p, 'homeassistant/sensor/x/config', false)).ok, false);
    }
  });

  it('reads sensor grants from the config and names a bad filter', () => {
    const config = parseBrokerConfig({
      users: [
        {
          name: 's',
          passwordFrom: { file: '/x' },
          sensorTopics: { publish: ['homie/#'], subscribe: ['homie/+/+/+/set'] },
        },
      ],
      anonymous: { sensorTopics: { publish: ['tele/#'] } },
    });
    assert.deepEqual(config.users[0]?.sensorTopics, {
      publish: ['homie/#'],
      subscribe: ['homie/+/+/+/set'],
    });
    assert.deepEqual(config.anonymous?.sensorTopics, { publish: ['tele/#'], subscribe: [] });
    const cases: [unknown, RegExp][] = [
      [{ publish: ['#'] }, /sensorTopics\.publish\[0\]: "#" must name its first level/],
      [{ publish: ['a/b#'] }, /sensorTopics\.publish\[0\]: "a\/b#" has a '#'/],
      [
        { subscribe: ['ok/#', 'edgebridge/v1/x/#'] },
        /sensorTopics\.subscribe\[1\]: .* device grants/,
      ],
      [{ subscribe: ['$SYS/#'] }, /subscribe\[0\]: .*'\$'/],
      [{ publish: [''] }, /publish\[0\]/],
      [{ publish: 'tele/#' }, /sensorTopics\.publish: must be an array/],
      [{ read: ['x'] }, /sensorTopics/],
    ];
    for (const [sensorTopics, message] of cases)
      assert.throws(
        () =>
          parseBrokerConfig({ users: [{ name: 's', passwordFrom: { file: '/x' }, sensorTopics }] }),
        (err: unknown) => err instanceof BrokerConfigError && message.test(err.message),
        String(message),
      );
  });
});

describe('the broker config file', () => {
  it('grants nothing by default', () => {
    const config = parseBrokerConfig({});
    assert.equal(config.anonymous, undefined);
    assert.deepEqual(config.users, []);
    assert.deepEqual(config.serviceAccounts.grants, []);
    assert.deepEqual(config.serviceAccounts.audiences, ['edgebridge']);
  });

  it('reads users, ServiceAccount grants (namespace defaults to the account’s) and limits', () => {
    const config = parseBrokerConfig({
      maxPacketBytes: 65536,
      users: [
        {
          name: 'demo',
          passwordFrom: { secretKeyRef: { namespace: 'default', name: 'users', key: 'demo' } },
          devices: [{ namespace: 'default', names: ['cam-1'], publish: true }],
        },
        { name: 'ops', passwordFrom: { file: '/etc/ops' }, devices: [{ namespace: 'default' }] },
      ],
      serviceAccounts: {
        audiences: ['edge'],
        cacheSeconds: 5,
        grants: [
          {
            namespace: 'apps',
            name: 'reader',
            devices: [{ selector: { matchLabels: { a: 'b' } } }],
          },
        ],
      },
    });
    assert.equal(config.maxPacketBytes, 65536);
    assert.deepEqual(config.users[0]?.password, {
      ref: { kind: 'Secret', namespace: 'default', name: 'users', key: 'demo' },
    });
    assert.deepEqual(config.users[0]?.grants, [
      { namespace: 'default', names: ['cam-1'], publish: true },
    ]);
    assert.deepEqual(config.users[1]?.password, { file: '/etc/ops' });
    assert.deepEqual(config.serviceAccounts.grants, [
      {
        namespace: 'apps',
        name: 'reader',
        grants: [{ namespace: 'apps', selector: { matchLabels: { a: 'b' } }, publish: false }],
      },
    ]);
  });

  it('rejects what it does not understand, saying where', () => {
    const cases: [unknown, RegExp][] = [
      [
        { user: [] },
        /^user: unknown field \(known: anonymous, maxPacketBytes, tls, users, serviceAccounts\)$/,
      ],
      [{ users: [{ name: 'a', devices: [] }] }, /users\[0\]\.passwordFrom: is required/],
      [[], /^the file must be an object$/],
      [
        { users: [{ name: 'a b', passwordFrom: { file: '/x' } }] },
        /^users\[0\]\.name: must be a user name of letters, digits/,
      ],
      [
        {
          users: [
            { name: 'a', passwordFrom: { file: '/x' } },
            { name: 'a', passwordFrom: { file: '/y' } },
          ],
        },
        /users\[1\]\.name: duplicate user 'a'/,
      ],
      [
        { serviceAccounts: { grants: [{ namespace: 'N' }] } },
        /grants\[0\]\.namespace: must be a DNS label/,
      ],
      [
        { users: [{ name: 'a', passwordFrom: { file: '/x', secretKeyRef: {} } }] },
        /exactly one of/,
      ],
      [{ users: [{ name: 'serviceaccount', passwordFrom: { file: '/x' } }] }, /reserved/],
      [
        { users: [{ name: 'a', passwordFrom: { file: '/x' }, devices: [{ names: ['x'] }] }] },
        /devices\[0\]\.namespace: is required/,
      ],
      [
        {
          users: [
            {
              name: 'a',
              passwordFrom: { file: '/x' },
              devices: [
                {
                  namespace: 'n',
                  selector: { matchExpressions: [{ key: 'k', operator: 'Maybe' }] },
                },
              ],
            },
          ],
        },
        /selector.*operator/,
      ],
      [
        {
          users: [
            {
              name: 'a',
              passwordFrom: { file: '/x' },
              devices: [{ namespace: 'n', publish: 'yes' }],
            },
          ],
        },
        /publish/,
      ],
      [{ maxPacketBytes: 10 }, /maxPacketBytes/],
      [{ tls: { certFile: 'rel.pem', keyFile: '/k' } }, /tls\.certFile: must be an absolute path/],
    ];
    for (const [doc, message] of cases) {
      assert.throws(
        () => parseBrokerConfig(doc),
        (err: unknown) => {
          assert.ok(err instanceof BrokerConfigError);
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });
});
