import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  API_VERSION,
  LABEL_DISCOVERY,
  type Device,
  type Discovery,
} from '../../../src/api/types.ts';
import {
  ANNOTATION_SPEC_HASH,
  LABEL_DEVICE,
  boundedName,
  deviceWorkloads,
  discoveryWorkloads,
  type WorkloadObject,
} from '../../../src/controller/broker-workloads.ts';

const podSpec = {
  containers: [
    { name: 'reader', image: 'reader:1' },
    { name: 'side', image: 'side:1' },
  ],
};

function discovery(spec: Partial<Discovery['spec']> = {}): Discovery {
  return {
    apiVersion: API_VERSION,
    kind: 'Discovery',
    metadata: { name: 'cams', namespace: 'site', uid: 'disc-uid' },
    spec: { handler: { name: 'simulated' }, ...spec },
  };
}

function device(nodes: string[], name = 'cams-0123456789'): Device {
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    metadata: { name, namespace: 'site', uid: 'dev-uid' },
    spec: { discovery: 'cams', handler: 'simulated', shared: true, id: 'cam-1', capacity: 1 },
    status: { nodes: nodes.map((n) => ({ name: n })) },
  };
}

const hostnames = (o: WorkloadObject): unknown => {
  const spec =
    o.kind === 'Job' ? (o.spec.template as { spec: Record<string, unknown> }).spec : o.spec;
  const terms = (
    spec.affinity as {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: { matchExpressions: { key: string; values: string[] }[] }[];
        };
      };
    }
  ).nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
  return terms.map((t) =>
    t.matchExpressions.filter((e) => e.key === 'kubernetes.io/hostname').map((e) => e.values),
  );
};

describe('broker workloads of a Device', () => {
  it('asks for nothing when the Discovery has no broker or services', () => {
    assert.deepEqual(deviceWorkloads({ discovery: discovery(), device: device(['a']) }), []);
    assert.deepEqual(discoveryWorkloads(discovery()), []);
  });

  it('makes one broker Pod per node that sees the Device, pinned to it, owned by the Device', () => {
    const pods = deviceWorkloads({
      discovery: discovery({ broker: { podSpec } }),
      device: device(['node-b', 'node-a']),
      resourceName: 'edgebridge.io/cams-0123456789',
    });
    assert.equal(pods.length, 2);
    assert.deepEqual(pods.map(hostnames), [[[['node-a']]], [[['node-b']]]]);
    for (const pod of pods) {
      assert.equal(pod.kind, 'Pod');
      assert.equal(pod.metadata.namespace, 'site');
      assert.equal(pod.metadata.labels[LABEL_DEVICE], 'cams-0123456789');
      assert.equal(pod.metadata.labels[LABEL_DISCOVERY], 'cams');
      assert.deepEqual(
        pod.metadata.ownerReferences.map((r) => [r.kind, r.uid, r.controller]),
        [['Device', 'dev-uid', true]],
      );
      const [first, second] = pod.spec.containers as {
        resources?: { limits?: Record<string, string> };
      }[];
      // One slot per pod: only the first container asks for it.
      assert.deepEqual(first?.resources?.limits, { 'edgebridge.io/cams-0123456789': '1' });
      assert.equal(second?.resources, undefined);
    }
    assert.notEqual(pods[0]?.metadata.name, pods[1]?.metadata.name);
  });

  it('keeps the user’s node affinity and adds the node to each of its terms', () => {
    const spec = {
      ...podSpec,
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'zone', operator: 'In', values: ['x'] }] },
              { matchExpressions: [{ key: 'zone', operator: 'In', values: ['y'] }] },
            ],
          },
        },
      },
    };
    const [pod] = deviceWorkloads({
      discovery: discovery({ broker: { podSpec: spec } }),
      device: device(['n1']),
    });
    assert.ok(pod !== undefined);
    assert.deepEqual(hostnames(pod), [[['n1']], [['n1']]]);
    const terms = JSON.stringify(pod.spec.affinity);
    assert.match(terms, /"values":\["x"\]/);
    assert.match(terms, /"values":\["y"\]/);
  });

  it('makes no broker for a Device no node sees, and no slot request without a resource name', () => {
    assert.deepEqual(
      deviceWorkloads({ discovery: discovery({ broker: { podSpec } }), device: device([]) }),
      [],
    );
    const [pod] = deviceWorkloads({
      discovery: discovery({ broker: { podSpec } }),
      device: device(['n1']),
    });
    assert.equal((pod?.spec.containers as { resources?: unknown }[])[0]?.resources, undefined);
  });

  it('makes one Job per Device, placed on any node that sees it, with the broker labels on its pods', () => {
    const jobSpec = {
      backoffLimit: 2,
      template: {
        metadata: { labels: { app: 'once' } },
        spec: { ...podSpec, restartPolicy: 'Never' },
      },
    };
    const objects = deviceWorkloads({
      discovery: discovery({ broker: { jobSpec } }),
      device: device(['n2', 'n1']),
    });
    assert.equal(objects.length, 1);
    const [job] = objects;
    assert.equal(job?.kind, 'Job');
    assert.equal(job?.spec.backoffLimit, 2);
    assert.deepEqual(job && hostnames(job), [[['n1', 'n2']]]);
    const labels = (job?.spec.template as { metadata: { labels: Record<string, string> } }).metadata
      .labels;
    assert.equal(labels.app, 'once');
    assert.equal(labels[LABEL_DEVICE], 'cams-0123456789');
  });

  it('makes the Device’s Service selecting its brokers, and the Discovery’s selecting all of them', () => {
    const d = discovery({
      deviceService: { ports: [{ port: 80 }] },
      discoveryService: { ports: [{ port: 81 }] },
    });
    const [svc] = deviceWorkloads({ discovery: d, device: device(['n1']) });
    assert.equal(svc?.kind, 'Service');
    assert.deepEqual(svc?.spec.ports, [{ port: 80 }]);
    assert.equal((svc?.spec.selector as Record<string, string>)[LABEL_DEVICE], 'cams-0123456789');
    const [all] = discoveryWorkloads(d);
    assert.equal((all?.spec.selector as Record<string, string>)[LABEL_DISCOVERY], 'cams');
    assert.deepEqual(
      all?.metadata.ownerReferences.map((r) => [r.kind, r.uid]),
      [['Discovery', 'disc-uid']],
    );
  });

  it('marks a changed spec with a different hash, and an unchanged one with the same', () => {
    const a = deviceWorkloads({
      discovery: discovery({ broker: { podSpec } }),
      device: device(['n1']),
    });
    const b = deviceWorkloads({
      discovery: discovery({ broker: { podSpec } }),
      device: device(['n1']),
    });
    const c = deviceWorkloads({
      discovery: discovery({
        broker: { podSpec: { containers: [{ name: 'reader', image: 'reader:2' }] } },
      }),
      device: device(['n1']),
    });
    const hash = (o: WorkloadObject[]) => o[0]?.metadata.annotations[ANNOTATION_SPEC_HASH];
    assert.equal(hash(a), hash(b));
    assert.notEqual(hash(a), hash(c));
  });

  it('keeps names and label values within 63 characters, distinct for distinct long names', () => {
    const long = `${'d'.repeat(240)}-0123456789`;
    const other = `${'d'.repeat(239)}x-0123456789`;
    const [p1] = deviceWorkloads({
      discovery: discovery({ broker: { podSpec } }),
      device: device(['n1'], long),
    });
    const [p2] = deviceWorkloads({
      discovery: discovery({ broker: { podSpec } }),
      device: device(['n1'], other),
    });
    for (const p of [p1, p2]) {
      assert.ok((p?.metadata.name.length ?? 99) <= 63);
      assert.match(p?.metadata.name ?? '', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      for (const v of Object.values(p?.metadata.labels ?? {})) assert.ok(v.length <= 63);
    }
    assert.notEqual(p1?.metadata.name, p2?.metadata.name);
    assert.equal(boundedName('short', 'svc'), 'short-svc');
  });
});
