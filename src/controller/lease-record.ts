// client-go's Lease rules for leader election, as pure functions of what an
// elector last read and when it saw it change: who may take the Lease, and
// what to write. Expiry is judged on the reader's own clock from the moment
// it saw the holder's last write, never from the times written in the Lease,
// so clock skew between replicas cannot hand the Lease to two holders.
import { microTime } from '../registry/kubernetes/client/micro-time.ts';

export const LEASE_GROUP = 'coordination.k8s.io';
export const LEASE_VERSION = 'v1';

/** coordination.k8s.io/v1 LeaseSpec, the fields leader election uses. */
export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** A Lease as last read, and when (monotonic ms) its spec was last seen to change. */
export interface Observed {
  lease: Lease;
  changedAt: number;
}

/** What an elector does next. */
export type Step =
  /** No Lease exists: create it, holding it. */
  | { kind: 'create'; spec: LeaseSpec }
  /** Write this spec over the Lease read (at its resourceVersion); `acquired` when it takes it from another or from nobody. */
  | { kind: 'update'; spec: LeaseSpec; acquired: boolean }
  /** Someone else holds a Lease that has not expired. */
  | { kind: 'wait'; holder: string; expiresInMs: number };

export interface StepInput {
  /** The Lease as last read; undefined when the server has none. */
  observed: Observed | undefined;
  identity: string;
  /** Monotonic now, on the same clock as `changedAt`. */
  now: number;
  /** Wall-clock now (ms since the epoch), for the times written into the Lease. */
  wallNow: number;
  leaseDurationSeconds: number;
}

/** The next step of client-go's tryAcquireOrRenew. */
export function nextStep(input: StepInput): Step {
  const { observed, identity, wallNow, leaseDurationSeconds } = input;
  const time = microTime(wallNow);
  if (observed === undefined) {
    return {
      kind: 'create',
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: time,
        renewTime: time,
        leaseTransitions: 0,
      },
    };
  }
  const spec = observed.lease.spec ?? {};
  const holder = spec.holderIdentity ?? '';
  if (holder === identity) {
    return {
      kind: 'update',
      spec: { ...spec, leaseDurationSeconds, renewTime: time },
      acquired: false,
    };
  }
  if (holder !== '') {
    // The holder's own duration: a replica configured differently is still respected.
    const durationMs = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    const expiresInMs = observed.changedAt + durationMs - input.now;
    if (expiresInMs > 0) return { kind: 'wait', holder, expiresInMs };
  }
  return {
    kind: 'update',
    spec: {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: time,
      renewTime: time,
      leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
    },
    acquired: true,
  };
}

/**
 * The spec that releases a held Lease: no holder, so that another replica takes
 * it on its next try instead of waiting for it to expire (client-go's
 * ReleaseOnCancel).
 */
export function releasedSpec(spec: LeaseSpec | undefined, wallNow: number): LeaseSpec {
  const time = microTime(wallNow);
  return {
    leaseDurationSeconds: 1,
    acquireTime: time,
    renewTime: time,
    leaseTransitions: spec?.leaseTransitions ?? 0,
  };
}

/** The observation after reading `lease`: its change time moves only if the spec differs from the last one read. */
export function observe(previous: Observed | undefined, lease: Lease, now: number): Observed {
  const same =
    previous !== undefined && JSON.stringify(previous.lease.spec) === JSON.stringify(lease.spec);
  return { lease, changedAt: same ? previous.changedAt : now };
}
