import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryReachability } from '../../../src/agent/registry-reachability.ts';

/** Lets queued microtasks run. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('RegistryReachability', () => {
  it('tells its listeners once when the registry answers after a request got no answer', async () => {
    const r = new RegistryReachability();
    let returns = 0;
    r.onReturn(() => returns++);
    r.observe('2xx');
    await tick();
    assert.equal(returns, 0, 'it never went away');
    r.observe('error');
    r.observe('error');
    r.observe('2xx');
    assert.equal(returns, 0, 'never synchronously');
    await tick();
    assert.equal(returns, 1);
    r.observe('2xx');
    await tick();
    assert.equal(returns, 1, 'once per return');
    r.observe('error');
    r.observe('404');
    await tick();
    assert.equal(returns, 2, 'a refusal is an answer too');
  });

  it('does not take an overloaded server (429, 5xx) as the registry being back', async () => {
    const r = new RegistryReachability();
    let returns = 0;
    r.onReturn(() => returns++);
    r.observe('error');
    r.observe('503');
    r.observe('429');
    await tick();
    assert.equal(returns, 0);
    r.observe('2xx');
    await tick();
    assert.equal(returns, 1);
  });

  it('stops telling a listener that unsubscribed', async () => {
    const r = new RegistryReachability();
    let returns = 0;
    const unsubscribe = r.onReturn(() => returns++);
    unsubscribe();
    r.observe('error');
    r.observe('2xx');
    await tick();
    assert.equal(returns, 0);
  });
});
