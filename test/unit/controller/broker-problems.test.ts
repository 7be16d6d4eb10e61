import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerProblems } from '../../../src/controller/broker-problems.ts';

const QUOTA = 'Pod cams-a-broker: pods "cams-a-broker" is forbidden: exceeded quota: pods';

describe('why a Discovery’s brokers cannot be made', () => {
  it('reports a Discovery’s first refusal and how many more, until each is cleared', () => {
    const p = new BrokerProblems();
    assert.deepEqual(p.set('device:ns/cams-a', 'ns/cams', QUOTA), {
      discovery: 'ns/cams',
      problem: QUOTA,
    });
    assert.deepEqual(p.set('device:ns/cams-b', 'ns/cams', 'Pod cams-b-broker: no'), {
      discovery: 'ns/cams',
      problem: `${QUOTA} (and 1 more refused)`,
    });
    // Another Device of the Discovery made its brokers: the refusals stay.
    assert.equal(p.set('device:ns/cams-c', 'ns/cams', undefined), undefined);
    assert.equal(p.get('ns/cams'), `${QUOTA} (and 1 more refused)`);
    assert.deepEqual(p.set('device:ns/cams-a', 'ns/cams', undefined), {
      discovery: 'ns/cams',
      problem: 'Pod cams-b-broker: no',
    });
    assert.deepEqual(p.set('device:ns/cams-b', 'ns/cams', undefined), {
      discovery: 'ns/cams',
      problem: undefined,
    });
    assert.equal(p.get('ns/cams'), undefined);
  });

  it('says nothing changed when the same refusal comes again', () => {
    const p = new BrokerProblems();
    p.set('device:ns/cams-a', 'ns/cams', QUOTA);
    assert.equal(p.set('device:ns/cams-a', 'ns/cams', QUOTA), undefined);
  });

  it('clears an owner under the Discovery it was refused for, even when that is no longer known', () => {
    const p = new BrokerProblems();
    p.set('device:ns/cams-a', 'ns/cams', QUOTA);
    // The Device is gone: its reconcile no longer knows the Discovery's name.
    assert.deepEqual(p.set('device:ns/cams-a', 'ns/cams-a', undefined), {
      discovery: 'ns/cams',
      problem: undefined,
    });
  });

  it('keeps Discoveries apart', () => {
    const p = new BrokerProblems();
    p.set('device:ns/cams-a', 'ns/cams', QUOTA);
    p.set('device:ns/sticks-a', 'ns/sticks', 'Job sticks-a: invalid');
    assert.equal(p.get('ns/cams'), QUOTA);
    assert.equal(p.get('ns/sticks'), 'Job sticks-a: invalid');
    assert.equal(p.get('other/cams'), undefined);
  });
});
