import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROBE_MS, RegistryReachability } from '../../../src/agent/registry-reachability.ts';
import { FakeClock } from '../reconcile/fake-clock.ts';

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

  it('probes the registry every PROBE_MS (jittered) while it does not answer, and stops once it does', async () => {
    const clock = new FakeClock();
    const r = new RegistryReachability({ clock, random: () => 0.5 });
    const stop = new AbortController();
    let probes = 0;
    let answer = 'error';
    // The registry's onRequest hook feeds each request's outcome back.
    r.probeWhileDown(() => {
      probes++;
      r.observe(answer);
      return answer === 'error' ? Promise.reject(new Error('no answer')) : Promise.resolve();
    }, stop.signal);
    let returns = 0;
    r.onReturn(() => returns++);
    clock.advance(10 * PROBE_MS);
    assert.equal(probes, 0, 'no probe while requests are answered');

    r.observe('error');
    clock.advance(PROBE_MS - 1);
    assert.equal(probes, 0);
    clock.advance(1);
    assert.equal(probes, 1);
    await tick();
    clock.advance(PROBE_MS);
    assert.equal(probes, 2, 'probing goes on while there is no answer');
    await tick();
    answer = '2xx';
    clock.advance(PROBE_MS);
    assert.equal(probes, 3);
    await tick();
    assert.equal(returns, 1, 'the probe noticed the return');
    clock.advance(10 * PROBE_MS);
    assert.equal(probes, 3, 'no probe once it answers');

    stop.abort();
    r.observe('error');
    clock.advance(10 * PROBE_MS);
    assert.equal(probes, 3, 'no probe after the signal aborted');
    assert.equal(clock.pending, 0);
  });
});
