import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brokerModeFrom, type BrokerFlagValues } from '../../src/cli/broker-flags.ts';
import { UsageError } from '../../src/cli/errors.ts';

const defaults: BrokerFlagValues = {
  broker: true,
  'broker-host': '0.0.0.0',
  'broker-port': '1883',
  'broker-max-connections': '1000',
  'broker-max-session-expiry': '86400',
};

function mode(values: Partial<BrokerFlagValues>, given: string[] = Object.keys(values)) {
  return brokerModeFrom({ ...defaults, ...values }, (flag) => given.includes(flag));
}

describe('--broker-max-connections', () => {
  it('defaults to 1,000 and takes a whole number of at least 1', () => {
    assert.deepEqual(mode({}), {
      kind: 'embedded',
      host: '0.0.0.0',
      port: 1883,
      maxConnections: 1000,
      maxSessionExpirySeconds: 86400,
    });
    assert.equal(
      (mode({ 'broker-max-connections': '5' }) as { maxConnections: number }).maxConnections,
      5,
    );
    for (const bad of ['0', '-1', '1.5', 'many', ''])
      assert.throws(() => mode({ 'broker-max-connections': bad }), UsageError, bad);
  });

  it('is for the embedded broker only', () => {
    assert.throws(
      () => mode({ 'broker-url': 'mqtt://127.0.0.1:1883', 'broker-max-connections': '5' }),
      /--broker-url .* and --broker-max-connections exclude each other/,
    );
    assert.throws(
      () => mode({ broker: false, 'broker-max-connections': '5' }, ['broker-max-connections']),
      /--no-broker and --broker-max-connections exclude each other/,
    );
  });
});

describe('--broker-max-session-expiry', () => {
  it('defaults to a day and takes a whole number of seconds of at least 1', () => {
    const expiry = (values: Partial<BrokerFlagValues>) =>
      (mode(values) as { maxSessionExpirySeconds: number }).maxSessionExpirySeconds;
    assert.equal(expiry({}), 86400);
    assert.equal(expiry({ 'broker-max-session-expiry': '60' }), 60);
    for (const bad of ['0', '-1', '1.5', 'forever', '', '4294967296'])
      assert.throws(() => mode({ 'broker-max-session-expiry': bad }), UsageError, bad);
  });

  it('is for the embedded broker only', () => {
    assert.throws(
      () => mode({ 'broker-url': 'mqtt://127.0.0.1:1883', 'broker-max-session-expiry': '60' }),
      /--broker-url .* and --broker-max-session-expiry exclude each other/,
    );
  });
});

describe('--broker-port', () => {
  it('takes a port number or 0, and names the flag and the rule otherwise', () => {
    assert.equal((mode({ 'broker-port': '0' }) as { port: number }).port, 0);
    const cases: [string, RegExp][] = [
      ['65536', /^--broker-port: must be at most 65535 \(a port number; 0 picks a free one\)$/],
      ['-1', /^--broker-port: must be at least 0 /],
      ['1.5', /^--broker-port: must be a whole number/],
      ['', /^--broker-port: must be a whole number/],
      ['http', /^--broker-port: must be a whole number/],
    ];
    for (const [bad, message] of cases)
      assert.throws(
        () => mode({ 'broker-port': bad }),
        (err: unknown) => err instanceof UsageError && message.test(err.message),
        bad,
      );
  });
});
