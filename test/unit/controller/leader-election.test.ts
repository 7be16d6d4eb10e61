import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import {
  LeaderElectionConfigError,
  LeaderElector,
  LeaseForbiddenError,
} from '../../../src/controller/leader-election.ts';
import {
  nextStep,
  observe,
  type Lease,
  type LeaseSpec,
} from '../../../src/controller/lease-record.ts';
import type { LeaseStore } from '../../../src/controller/lease-store.ts';
import { KubeApiError } from '../../../src/registry/kubernetes/client/errors.ts';
import { FakeClock } from '../reconcile/fake-clock.ts';

const log = pino({ level: 'silent' });
const LEASE = 15_000;
const RENEW = 10_000;
const RETRY = 2_000;

/** One Lease in memory with the API server's resourceVersion checks; `fail` makes requests throw. */
class MemoryLeaseStore implements LeaseStore {
  readonly description = 'test/lease';
  lease: Lease | undefined;
  #version = 0;
  /** When set, every request of these identities (or all, with '*') fails with it. */
  fail: { who: string; err: Error } | undefined;

  #check(spec?: LeaseSpec): void {
    if (this.fail === undefined) return;
    if (this.fail.who === '*' || spec?.holderIdentity === this.fail.who) throw this.fail.err;
  }

  get(): Promise<Lease | undefined> {
    return Promise.resolve().then(() => {
      if (this.fail?.who === '*') throw this.fail.err;
      return this.lease === undefined ? undefined : structuredClone(this.lease);
    });
  }

  create(spec: LeaseSpec): Promise<Lease> {
    return Promise.resolve().then(() => {
      this.#check(spec);
      if (this.lease !== undefined) throw new KubeApiError(409, 'AlreadyExists', 'exists');
      this.lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: 'lease', namespace: 'test', resourceVersion: String(++this.#version) },
        spec,
      };
      return structuredClone(this.lease);
    });
  }

  update(lease: Lease, spec: LeaseSpec): Promise<Lease> {
    return Promise.resolve().then(() => {
      // A renewal is refused for the identity it carries; a release (no holder) for the one it read.
      this.#check(spec.holderIdentity !== undefined ? spec : lease.spec);
      if (this.lease?.metadata.resourceVersion !== lease.metadata.resourceVersion)
        throw new KubeApiError(409, 'Conflict', 'the object has been modified');
      this.lease = {
        ...lease,
        metadata: { ...lease.metadata, resourceVersion: String(++this.#version) },
        spec,
      };
      return structuredClone(this.lease);
    });
  }
}

/** Lets promises and setImmediate callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Moves the fake clock on in small steps, letting the electors' requests complete in between. */
async function advance(clock: FakeClock, ms: number, step = 100): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    clock.advance(Math.min(step, ms - done));
    await settle();
  }
}

interface Replica {
  elector: LeaderElector;
  /** One entry per term: whether its signal has aborted. */
  terms: AbortSignal[];
  gauge: boolean[];
  done: Promise<void>;
}

function replica(store: LeaseStore, clock: FakeClock, identity: string): Replica {
  const gauge: boolean[] = [];
  const terms: AbortSignal[] = [];
  const elector = new LeaderElector({
    store,
    log,
    identity,
    clock,
    wallClock: () => 1_700_000_000_000 + clock.now(),
    random: () => 0.5,
    metrics: { setLeader: (leading) => gauge.push(leading) },
  });
  const done = elector.run((term) => {
    terms.push(term);
  });
  return { elector, terms, gauge, done };
}

describe('nextStep (client-go tryAcquireOrRenew)', () => {
  const base = { identity: 'b', now: 20_000, wallNow: 0, leaseDurationSeconds: 15 };
  const lease = (spec: LeaseSpec): Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'l', namespace: 'n', resourceVersion: '1' },
    spec,
  });

  it('creates a missing Lease, holding it', () => {
    const step = nextStep({ ...base, observed: undefined });
    assert.equal(step.kind, 'create');
    assert.equal(step.kind === 'create' && step.spec.holderIdentity, 'b');
  });

  it("waits while another's Lease has not expired on the reader's clock, whatever times it carries", () => {
    // renewTime far in the past (a skewed clock) does not make it expired: the observation time counts.
    const observed = {
      lease: lease({ holderIdentity: 'a', renewTime: '2000-01-01T00:00:00.000000Z' }),
      changedAt: 10_000,
    };
    const step = nextStep({ ...base, observed });
    assert.deepEqual(step, { kind: 'wait', holder: 'a', expiresInMs: 5_000 });
    const later = nextStep({ ...base, observed, now: 25_000 });
    assert.equal(later.kind, 'update');
    assert.equal(later.kind === 'update' && later.acquired, true);
    assert.equal(later.kind === 'update' && later.spec.leaseTransitions, 1);
  });

  it("respects the holder's own lease duration", () => {
    const observed = {
      lease: lease({ holderIdentity: 'a', leaseDurationSeconds: 60 }),
      changedAt: 10_000,
    };
    assert.equal(nextStep({ ...base, observed, now: 60_000 }).kind, 'wait');
  });

  it('takes a released Lease (no holder) at once, and renews its own keeping acquireTime', () => {
    const released = {
      lease: lease({ leaseDurationSeconds: 1, leaseTransitions: 3 }),
      changedAt: 19_999,
    };
    const take = nextStep({ ...base, observed: released });
    assert.equal(take.kind === 'update' && take.acquired, true);
    assert.equal(take.kind === 'update' && take.spec.leaseTransitions, 4);
    const own = { lease: lease({ holderIdentity: 'b', acquireTime: 'T0' }), changedAt: 0 };
    const renew = nextStep({ ...base, observed: own, now: 1e9 });
    assert.equal(renew.kind === 'update' && renew.acquired, false);
    assert.equal(renew.kind === 'update' && renew.spec.acquireTime, 'T0');
  });

  it("moves the observation time only when the Lease's spec changed", () => {
    const first = observe(undefined, lease({ holderIdentity: 'a', renewTime: 'T1' }), 100);
    assert.equal(
      observe(first, lease({ holderIdentity: 'a', renewTime: 'T1' }), 200).changedAt,
      100,
    );
    assert.equal(
      observe(first, lease({ holderIdentity: 'a', renewTime: 'T2' }), 200).changedAt,
      200,
    );
  });
});

describe('LeaderElector with a fake clock', () => {
  it('refuses timings where a new leader could start before the old one stopped', () => {
    const store = new MemoryLeaseStore();
    assert.throws(
      () => new LeaderElector({ store, log, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }),
      LeaderElectionConfigError,
    );
    assert.throws(
      () => new LeaderElector({ store, log, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }),
      LeaderElectionConfigError,
    );
  });

  it('one of two replicas leads; the other takes over only once the leader stopped renewing for the lease duration', async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const a = replica(store, clock, 'a');
    await settle();
    const b = replica(store, clock, 'b');
    await advance(clock, 60_000);
    assert.equal(a.elector.isLeader, true);
    assert.equal(b.elector.isLeader, false);
    assert.equal(a.terms.length, 1);
    assert.deepEqual(a.gauge, [false, true]);
    assert.equal(store.lease?.spec?.holderIdentity, 'a');

    // a's renewals fail from now on (its API server link is cut; b's is not).
    const cutAt = clock.now();
    store.fail = { who: 'a', err: new KubeApiError(503, 'ServiceUnavailable', 'down') };
    let aStoppedAt: number | undefined;
    let bStartedAt: number | undefined;
    while (bStartedAt === undefined && clock.now() < cutAt + 60_000) {
      await advance(clock, 100);
      if (aStoppedAt === undefined && a.terms[0]?.aborted === true) aStoppedAt = clock.now();
      if (b.elector.isLeader) bStartedAt = clock.now();
    }
    assert.ok(aStoppedAt !== undefined && bStartedAt !== undefined, 'a stops and b takes over');
    assert.ok(aStoppedAt <= cutAt + RENEW, 'a stops by its renew deadline');
    assert.ok(
      bStartedAt >= cutAt + LEASE - RETRY,
      'b waits out the lease duration from the last renewal it saw',
    );
    assert.ok(aStoppedAt < bStartedAt, 'never two leaders at once');
    assert.equal(store.lease?.spec?.holderIdentity, 'b');
    assert.equal(store.lease?.spec?.leaseTransitions, 1);
    assert.equal(a.elector.isLeader, false);

    store.fail = undefined;
    await advance(clock, 30_000);
    assert.equal(a.elector.isLeader, false, 'a stays a candidate while b renews');
    await Promise.all([a.elector.close(), b.elector.close()]);
    await Promise.all([a.done, b.done]);
  });

  it('close() stops the work first, then clears the holder, and the other takes over on its next try', async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const order: string[] = [];
    const a = new LeaderElector({ store, log, identity: 'a', clock, random: () => 0 });
    const aDone = a.run(
      (term) =>
        new Promise<void>((resolve) =>
          term.addEventListener('abort', () => {
            order.push(`work stopped; holder ${String(store.lease?.spec?.holderIdentity)}`);
            resolve();
          }),
        ),
    );
    await settle();
    const b = replica(store, clock, 'b');
    await advance(clock, 10_000);
    assert.equal(a.isLeader, true);

    await a.close();
    await a.close();
    await aDone;
    order.push(`closed; holder ${String(store.lease?.spec?.holderIdentity)}`);
    assert.deepEqual(order, ['work stopped; holder a', 'closed; holder undefined']);
    await advance(clock, RETRY * 1.2 + 100);
    assert.equal(b.elector.isLeader, true, 'b leads well before the lease duration');
    await b.elector.close();
  });

  it('a leader whose renewals are refused stops at the deadline even while a request hangs', async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const a = replica(store, clock, 'a');
    await advance(clock, 5_000);
    assert.equal(a.elector.isLeader, true);
    // From now on requests never answer (they would time out on the real client).
    const never = (): Promise<never> => new Promise(() => undefined);
    Object.assign(store, { update: never, get: never });
    const stuckAt = clock.now();
    await advance(clock, RENEW + RETRY);
    assert.equal(a.terms[0]?.aborted, true);
    assert.ok(clock.now() - stuckAt < LEASE);
    void a.elector.close();
  });

  it('a 403 before any answer is a configuration error; unavailable servers are retried', async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    store.fail = { who: '*', err: new KubeApiError(403, 'Forbidden', 'leases is forbidden') };
    const denied = replica(store, clock, 'x');
    await assert.rejects(denied.done, (err: Error) => {
      assert.ok(err instanceof LeaseForbiddenError);
      assert.equal(err.code, 'EDGEBRIDGE_LEASE_FORBIDDEN');
      assert.match(err.message, /leases\.coordination\.k8s\.io/);
      return true;
    });
    await denied.elector.close();

    store.fail = { who: '*', err: new KubeApiError(503, 'ServiceUnavailable', 'down') };
    const patient = replica(store, clock, 'y');
    await advance(clock, 60_000);
    assert.equal(patient.elector.isLeader, false);
    store.fail = undefined;
    await advance(clock, 10_000);
    assert.equal(patient.elector.isLeader, true);
    await patient.elector.close();
    await patient.done;
  });
});
