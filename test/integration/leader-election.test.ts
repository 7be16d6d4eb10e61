import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { LeaderElector, LeaseForbiddenError } from '../../src/controller/leader-election.ts';
import type { Lease } from '../../src/controller/lease-record.ts';
import { KubeLeaseStore } from '../../src/controller/lease-store.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { parseMicroTime } from '../../src/registry/kubernetes/client/micro-time.ts';
import { resourcePath } from '../../src/registry/kubernetes/client/paths.ts';
import { TEST_USERS, type ControlPlaneInfo } from '../harness/control-plane.ts';
import { eventually } from '../harness/devices.ts';
import { useControlPlane } from '../harness/kube.ts';
import { applyManifests, kubectlAsAdmin, oncePerControlPlane } from '../harness/kubectl.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { PeerProcess } from '../harness/processes.ts';
import { scratchDir } from '../harness/workdir.ts';

const NAMESPACE = 'edgebridge-system';
const MANIFESTS = path.resolve(import.meta.dirname, '..', '..', 'manifests');
const NAMESPACE_FILE = path.join(MANIFESTS, 'base', 'namespace.yaml');
const ROLE = path.join(MANIFESTS, 'rbac', 'controller-leader-election-role.yaml');
const FIXTURE = path.resolve(import.meta.dirname, 'fixtures', 'lease-elector.ts');
// Shorter than the defaults so that a takeover takes seconds; the same ratios as client-go's.
const LEASE_MS = 8000;
const RENEW_MS = 6000;
const RETRY_MS = 1000;

/** The manifest's Role for the controller's Lease, in force for the controller's token. */
const installLeaseRole = oncePerControlPlane(async (info: ControlPlaneInfo) => {
  await applyManifests(info, [NAMESPACE_FILE, ROLE]);
  await eventually('the controller may update Leases', async () => {
    const r = await kubectlAsAdmin(
      info,
      'auth',
      'can-i',
      'update',
      'leases.coordination.k8s.io',
      '-n',
      NAMESPACE,
      `--as=${TEST_USERS.controller.name}`,
    ).catch((err: unknown) => ({ stdout: (err as { stdout?: string }).stdout ?? '' }));
    return r.stdout.trim() === 'yes' ? true : undefined;
  });
});

interface LogLine {
  msg: string;
  time: number;
  acquireTime?: string;
  renewTime?: string;
}

/** One elector process and what it logged. */
class Replica {
  readonly identity: string;
  readonly process: PeerProcess;
  /** When the test SIGKILLed it (it led at most until then). */
  killedAt: number | undefined;

  constructor(info: ControlPlaneInfo, dir: string, lease: string, identity: string) {
    this.identity = identity;
    this.process = new PeerProcess({
      name: identity,
      command: process.execPath,
      args: [
        FIXTURE,
        info.kubeconfigs.controller,
        NAMESPACE,
        lease,
        identity,
        String(LEASE_MS),
        String(RENEW_MS),
        String(RETRY_MS),
      ],
      logDir: dir,
    });
  }

  lines(): LogLine[] {
    return readFileSync(this.process.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  }

  /** Its leading intervals in wall-clock ms, the last one ended by its kill if it never logged a stop. */
  terms(): { start: number; end: number; acquireTime: string | undefined }[] {
    const terms: { start: number; end: number; acquireTime: string | undefined }[] = [];
    for (const line of this.lines()) {
      if (line.msg === 'started leading')
        terms.push({ start: line.time, end: Infinity, acquireTime: line.acquireTime });
      const last = terms.at(-1);
      if (line.msg === 'stopped leading' && last !== undefined) last.end = line.time;
    }
    const last = terms.at(-1);
    if (last !== undefined && last.end === Infinity && this.killedAt !== undefined)
      last.end = this.killedAt;
    return terms;
  }

  kill(): void {
    this.process.signal('SIGKILL');
    this.killedAt = Date.now();
  }
}

describe('leader election against a real API server', () => {
  let started: ReturnType<typeof make> | undefined;
  const make = async () => {
    const info = await useControlPlane();
    await installLeaseRole(info);
    const admin = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
    return { info, admin, dir: scratchDir('leader-election') };
  };
  const setup = lazy(() => (started = make()));
  const replicas: Replica[] = [];
  const leases: string[] = [];
  after(async () => {
    await Promise.all(replicas.map((r) => r.process.stop()));
    const s = await settled(started);
    if (s === undefined) return;
    for (const name of leases)
      await s.admin.request('DELETE', resourcePath({ ...leaseRef, name })).catch(() => undefined);
    s.admin.close();
  });
  const leaseRef = {
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    namespace: NAMESPACE,
  };
  const newLease = (): string => {
    const name = `le-test-${randomBytes(3).toString('hex')}`;
    leases.push(name);
    return name;
  };
  const readLease = async (admin: KubeClient, name: string): Promise<Lease> =>
    admin.request<Lease>('GET', resourcePath({ ...leaseRef, name }));
  const holder = (lease: Lease): string => lease.spec?.holderIdentity ?? '';

  it('refuses an identity without rights on Leases with one clear configuration error', async () => {
    const { info } = await setup();
    // The agent's token has no rights on Leases.
    const client = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.agent]));
    const elector = new LeaderElector({
      store: new KubeLeaseStore(client, NAMESPACE, newLease()),
      log: pino({ level: 'silent' }),
    });
    await assert.rejects(
      elector.run(() => undefined),
      (err: Error) => {
        assert.ok(err instanceof LeaseForbiddenError, String(err));
        assert.match(err.message, /HTTP 403/);
        return true;
      },
    );
    assert.equal(elector.isLeader, false);
    await elector.close();
    client.close();
  });

  it('one of two leads; the leader SIGKILLed, the other takes over once the lease expired; a graceful stop hands over at once; never two leaders', async () => {
    const { info, admin, dir } = await setup();
    const name = newLease();
    const a = new Replica(info, dir, name, `a-${name}`);
    const b = new Replica(info, dir, name, `b-${name}`);
    replicas.push(a, b);
    const first = await eventually('a leader', async () => {
      const lease = await readLease(admin, name);
      return holder(lease) !== '' ? lease : undefined;
    });
    // Both have seen the Lease (the candidate logs who holds it) before the leader dies.
    const [leader, other] = holder(first) === a.identity ? [a, b] : [b, a];
    await other.process.waitUntil('the candidate sees the leader', () =>
      other.lines().some((l) => l.msg === 'the lease is held by another replica')
        ? true
        : undefined,
    );

    leader.kill();
    await leader.process.waitForExit();
    const lastRenew = parseMicroTime((await readLease(admin, name)).spec?.renewTime);
    const taken = await eventually(
      'the other replica to take over',
      async () => {
        const lease = await readLease(admin, name);
        return holder(lease) === other.identity ? lease : undefined;
      },
      LEASE_MS + 20_000,
    );
    const acquired = parseMicroTime(taken.spec?.acquireTime);
    assert.ok(lastRenew !== undefined && acquired !== undefined);
    // Safety, from the Lease's own times: the new leader waited out the lease duration.
    assert.ok(
      acquired - lastRenew >= LEASE_MS,
      `taken over ${acquired - lastRenew} ms after the last renewal, before the lease expired`,
    );
    assert.equal(taken.spec?.leaseTransitions, (first.spec?.leaseTransitions ?? 0) + 1);

    // A third replica, then the leader stopped gracefully: it releases, the third takes it.
    const c = new Replica(info, dir, name, `c-${name}`);
    replicas.push(c);
    await c.process.waitUntil('the third replica sees the leader', () =>
      c.lines().some((l) => l.msg === 'the lease is held by another replica') ? true : undefined,
    );
    await other.process.stop();
    const released = other.lines().find((l) => l.msg === 'released the lease');
    assert.ok(released !== undefined, 'the leader released the lease on SIGTERM');
    const releasedAt = parseMicroTime(released.renewTime);
    const handed = await eventually(
      'the third replica to take over',
      async () => {
        const lease = await readLease(admin, name);
        return holder(lease) === c.identity ? lease : undefined;
      },
      LEASE_MS + 20_000,
    );
    const handedAt = parseMicroTime(handed.spec?.acquireTime);
    assert.ok(releasedAt !== undefined && handedAt !== undefined);
    assert.ok(
      handedAt - releasedAt < LEASE_MS,
      'the release hands over without waiting for the lease to expire',
    );

    // Every replica's leading intervals, from its own log lines, are disjoint (a
    // loaded machine may make a leader miss its deadline and lead again: more terms).
    const terms = [a, b, c]
      .flatMap((r) => r.terms().map((t) => ({ ...t, who: r.identity })))
      .sort((x, y) => x.start - y.start);
    assert.ok(terms.length >= 3, JSON.stringify(terms));
    for (let i = 1; i < terms.length; i++) {
      const prev = terms[i - 1];
      const next = terms[i];
      assert.ok(prev !== undefined && next !== undefined);
      assert.ok(
        prev.end <= next.start,
        `${prev.who} led until ${prev.end}, ${next.who} from ${next.start}`,
      );
    }
    // Each term started after the acquireTime it wrote, in the order of the Lease's transitions.
    for (const t of terms) assert.ok((parseMicroTime(t.acquireTime) ?? Infinity) <= t.start);
  });
});
