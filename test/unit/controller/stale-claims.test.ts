import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClaimHolders, staleClaims } from '../../../src/controller/stale-claims.ts';
import type { NodeReadiness } from '../../../src/controller/node-readiness.ts';

const R = 'edgebridge.io/cams-0123456789';
const GRACE = 60_000;
const NOW = 1_000_000_000;

/** Readiness by node name; a node not listed is Ready (as a known, live node). */
function nodes(entries: Record<string, NodeReadiness>): (node: string) => NodeReadiness {
  return (node) => entries[node] ?? { ready: true, since: 0 };
}

describe('device plugin claims of nodes that are gone', () => {
  it('releases the claims of a deleted node and keeps those of a ready one', () => {
    const got = staleClaims(
      { '0': `dead:${R}:default/reader`, '1': `live:${R}`, '2': `dead:${R}` },
      nodes({ dead: { ready: false, since: 0 }, live: { ready: true, since: 5 } }),
      GRACE,
      NOW,
    );
    assert.deepEqual(got, { slots: ['0', '2'], nodes: ['dead'] });
  });

  it('keeps a NotReady node’s claims for the grace period, and says when to look again', () => {
    const since = NOW - GRACE + 5_000;
    const slow = nodes({ slow: { ready: false, since } });
    assert.deepEqual(staleClaims({ '0': `slow:${R}` }, slow, GRACE, NOW), {
      slots: [],
      nodes: [],
      recheckInMs: 5_000,
    });
    assert.deepEqual(staleClaims({ '0': `slow:${R}` }, slow, GRACE, NOW + 5_001), {
      slots: ['0'],
      nodes: ['slow'],
    });
  });

  it('keeps values that are not claims', () => {
    const got = staleClaims(
      { '1': 'not a claim', '2': '' },
      () => ({ ready: false, since: 0 }),
      GRACE,
      NOW,
    );
    assert.deepEqual(got, { slots: [], nodes: [] });
  });

  it('gives the soonest end of a grace period among several NotReady nodes', () => {
    const got = staleClaims(
      { '0': `a:${R}`, '1': `b:${R}`, '2': `gone:${R}` },
      nodes({
        a: { ready: false, since: NOW - 10_000 },
        b: { ready: false, since: NOW - 50_000 },
        gone: { ready: false, since: 0 },
      }),
      GRACE,
      NOW,
    );
    assert.deepEqual(got, { slots: ['2'], nodes: ['gone'], recheckInMs: 10_000 });
  });
});

describe('how the nodes that hold claims stand', () => {
  const ready: NodeReadiness = { ready: true, since: 7 };

  it('takes a known Node’s readiness, and a deleted one as gone at once', () => {
    const holders = new ClaimHolders();
    assert.deepEqual(holders.readiness('a', ready, NOW), ready);
    holders.deleted('a');
    assert.deepEqual(holders.readiness('a', undefined, NOW), { ready: false, since: 0 });
  });

  it('counts a node without a Node as NotReady from when it was first found so', () => {
    const holders = new ClaimHolders();
    assert.deepEqual(holders.readiness('new', undefined, NOW), { ready: false, since: NOW });
    assert.deepEqual(holders.readiness('new', undefined, NOW + 1_000), {
      ready: false,
      since: NOW,
    });
    // Its Node reached the cache: from then on the Node's readiness counts, and a later
    // absence starts anew.
    assert.deepEqual(holders.readiness('new', ready, NOW + 2_000), ready);
    assert.deepEqual(holders.readiness('new', undefined, NOW + 3_000), {
      ready: false,
      since: NOW + 3_000,
    });
  });

  it('a Node deleted and made again counts as its new Node', () => {
    const holders = new ClaimHolders();
    holders.deleted('a');
    assert.deepEqual(holders.readiness('a', ready, NOW), ready);
    assert.deepEqual(holders.readiness('a', undefined, NOW + 1), { ready: false, since: NOW + 1 });
  });

  it('forgets nodes that hold no claim any more', () => {
    const holders = new ClaimHolders();
    holders.deleted('gone');
    holders.deleted('holding');
    holders.prune([{ '0': `holding:${R}` }, { '1': 'not a claim' }]);
    assert.deepEqual(holders.readiness('holding', undefined, NOW), { ready: false, since: 0 });
    assert.deepEqual(holders.readiness('gone', undefined, NOW), { ready: false, since: NOW });
  });
});
