import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Authenticator } from '../../../src/dataplane/authenticator.ts';
import { parseBrokerConfig } from '../../../src/dataplane/broker-config.ts';
import {
  CachingTokenReviewer,
  tokenExpiry,
  type TokenReviewStatus,
} from '../../../src/dataplane/token-review.ts';
import type { ValueRef } from '../../../src/registry/registry.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'eb-auth-'));
const passwordFile = path.join(dir, 'ops-password');
writeFileSync(passwordFile, 'from-a-file\n');

const config = parseBrokerConfig({
  users: [
    {
      name: 'demo',
      passwordFrom: { secretKeyRef: { namespace: 'default', name: 'users', key: 'demo' } },
      devices: [{ namespace: 'default' }],
    },
    { name: 'ops', passwordFrom: { file: passwordFile }, devices: [{ namespace: 'ops' }] },
    {
      name: 'missing',
      passwordFrom: { configMapKeyRef: { namespace: 'default', name: 'nothing', key: 'k' } },
    },
  ],
});
const reads: ValueRef[] = [];
const auth = new Authenticator({
  config,
  readValue: (ref) => {
    reads.push(ref);
    return Promise.resolve(ref.kind === 'Secret' && ref.name === 'users' ? 's3cret' : undefined);
  },
  tokens: undefined,
});
const pw = (s: string): Buffer => Buffer.from(s);

describe('broker client authentication', () => {
  it('accepts users whose password matches the Secret or file, with their grants', async () => {
    const demo = await auth.authenticate('demo', pw('s3cret'));
    assert.deepEqual(demo, {
      ok: true,
      principal: { name: 'user:demo', grants: [{ namespace: 'default', publish: false }] },
    });
    const ops = await auth.authenticate('ops', pw('from-a-file'));
    assert.equal(ops.ok && ops.principal.name, 'user:ops');
  });

  it('refuses wrong passwords, unknown users and users whose password is missing with code 4', async () => {
    for (const [user, password] of [
      ['demo', 's3cret!'],
      ['demo', 's3cre'],
      ['nobody', 's3cret'],
      ['missing', ''],
      ['missing', 'anything'],
    ] as const) {
      const result = await auth.authenticate(user, pw(password));
      assert.equal(result.ok, false, `${user}/${password}`);
      assert.equal(!result.ok && result.returnCode, 4, `${user}/${password}`);
    }
  });

  it('refuses anonymous clients with code 5 unless the config allows them', async () => {
    const refused = await auth.authenticate(undefined, undefined);
    assert.equal(!refused.ok && refused.returnCode, 5);
    const open = new Authenticator({
      config: parseBrokerConfig({ anonymous: { devices: [{ namespace: 'lab' }] } }),
      readValue: () => Promise.resolve(undefined),
      tokens: undefined,
    });
    assert.deepEqual(await open.authenticate(undefined, undefined), {
      ok: true,
      principal: { name: 'anonymous', grants: [{ namespace: 'lab', publish: false }] },
    });
  });

  it('reads a password again only after a while', async () => {
    reads.length = 0;
    await auth.authenticate('demo', pw('s3cret'));
    await auth.authenticate('demo', pw('wrong'));
    assert.equal(reads.length, 0);
  });

  it('refuses ServiceAccount tokens without a cluster to check them', async () => {
    const result = await auth.authenticate('serviceaccount', pw('a.b.c'));
    assert.equal(!result.ok && result.returnCode, 5);
  });
});

describe('the token review cache', () => {
  const jwt = (claims: object): string =>
    `x.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.y`;

  it('asks once per token while the answer is fresh, and shares a request in flight', async () => {
    let asked = 0;
    const cache = new CachingTokenReviewer(
      {
        review: async (token): Promise<TokenReviewStatus> => {
          asked += 1;
          await new Promise((r) => setTimeout(r, 10));
          return { authenticated: token.startsWith('good'), username: 'system:serviceaccount:a:b' };
        },
      },
      60_000,
    );
    const [a, b] = await Promise.all([
      cache.review('good-1', ['x']),
      cache.review('good-1', ['x']),
    ]);
    assert.equal(a, b);
    await cache.review('good-1', ['x']);
    assert.equal(asked, 1);
    await cache.review('good-1', ['other-audience']);
    assert.equal(asked, 2);
    assert.equal((await cache.review('bad', ['x'])).authenticated, false);
    await cache.review('bad', ['x']);
    assert.equal(asked, 3);
  });

  it('does not keep failed reviews', async () => {
    let asked = 0;
    const cache = new CachingTokenReviewer(
      {
        review: () => {
          asked += 1;
          return Promise.reject(new Error('API server unreachable'));
        },
      },
      60_000,
    );
    await assert.rejects(cache.review('t', ['x']), /unreachable/);
    await assert.rejects(cache.review('t', ['x']), /unreachable/);
    assert.equal(asked, 2);
  });

  it('reads the expiry of a JWT, and nothing from other strings', () => {
    assert.equal(tokenExpiry(jwt({ exp: 1700000000 })), 1700000000_000);
    assert.equal(tokenExpiry('not-a-jwt'), undefined);
    assert.equal(tokenExpiry('a.!!!.c'), undefined);
    assert.equal(tokenExpiry(jwt({ exp: 'soon' })), undefined);
  });
});
