import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  API_VERSION,
  type Condition,
  type DeviceSlice,
  type Discovery,
} from '../../../src/api/types.ts';
import { discoveryStatus, statusChanged } from '../../../src/controller/discovery-status.ts';
import { fold } from '../../../src/controller/fold.ts';

const T0 = new Date('2026-12-03T12:00:00Z');
const T1 = new Date('2026-12-03T12:05:00Z');

const discovery = (status?: Discovery['status']): Discovery => ({
  apiVersion: API_VERSION,
  kind: 'Discovery',
  metadata: { name: 'cams', namespace: 'site', generation: 3 },
  spec: { handler: { name: 'simulated' } },
  ...(status !== undefined ? { status } : {}),
});

function slice(node: string, url: string, conditions?: Condition[]): DeviceSlice {
  return {
    apiVersion: API_VERSION,
    kind: 'DeviceSlice',
    metadata: { name: `cams-${node}-0`, namespace: 'site' },
    spec: {
      node,
      discovery: 'cams',
      shared: true,
      devices: [{ id: 'cam-1', properties: { URL: url } }],
      deviceCount: 1,
      ...(conditions !== undefined ? { conditions } : {}),
    },
  };
}

const valid = (ok: boolean, message: string): Condition => ({
  type: 'DetailsValid',
  status: ok ? 'True' : 'False',
  reason: ok ? 'Valid' : 'InvalidDetails',
  message,
  lastTransitionTime: T0.toISOString(),
});

function statusOf(d: Discovery, slices: DeviceSlice[], now = T0) {
  const result = fold({
    discovery: d,
    slices,
    nodes: new Map(),
    nodeGraceMs: 0,
    now: now.getTime(),
  });
  return discoveryStatus(d, result, slices, now);
}

const cond = (s: Discovery['status'], type: string) => s?.conditions?.find((c) => c.type === type);

describe('discoveryStatus', () => {
  it('counts Devices and names the reporting nodes', () => {
    const s = statusOf(discovery(), [slice('b', 'u'), slice('a', 'u')]);
    assert.equal(s.devices, 1);
    assert.equal(s.observedGeneration, 3);
    assert.deepEqual(cond(s, 'NodesReporting'), {
      type: 'NodesReporting',
      status: 'True',
      reason: 'NodesReporting',
      message: '2 nodes report: a, b',
      lastTransitionTime: T0.toISOString(),
      observedGeneration: 3,
    });
    assert.equal(cond(s, 'SpecConflict')?.status, 'False');
  });

  it('reports a conflict naming the overruled node and the keys, never the values', () => {
    const s = statusOf(discovery(), [
      slice('a', 'http://one/'),
      slice('b', 'http://one/'),
      slice('c', 'http://two/'),
    ]);
    const c = cond(s, 'SpecConflict');
    assert.equal(c?.status, 'True');
    assert.match(c?.message ?? '', /\(properties\.URL\): the view of a, b is used, not that of c/);
    assert.doesNotMatch(c?.message ?? '', /http:/);
  });

  it("aggregates the nodes' conditions: False naming the nodes that say so", () => {
    const s = statusOf(discovery(), [
      slice('a', 'u', [valid(true, 'ok')]),
      slice('b', 'u', [valid(false, 'port is not a number')]),
    ]);
    assert.deepEqual(
      [
        cond(s, 'DetailsValid')?.status,
        cond(s, 'DetailsValid')?.reason,
        cond(s, 'DetailsValid')?.message,
      ],
      ['False', 'InvalidDetails', 'on node b: port is not a number'],
    );
    const ok = statusOf(discovery(), [slice('a', 'u', [valid(true, 'ok')])]);
    assert.equal(cond(ok, 'DetailsValid')?.message, 'on 1 node: ok');
  });

  it('keeps transition times while nothing changes, so that the same status is not written again', () => {
    const slices = [slice('a', 'u')];
    const first = statusOf(discovery(), slices, T0);
    const stored = discovery(first);
    const again = statusOf(stored, slices, T1);
    assert.equal(statusChanged(stored, again), false);
    // A change of status moves its time.
    const none = statusOf(stored, [], T1);
    assert.equal(statusChanged(stored, none), true);
    assert.equal(cond(none, 'NodesReporting')?.lastTransitionTime, T1.toISOString());
    assert.equal(cond(none, 'SpecConflict')?.lastTransitionTime, T0.toISOString());
  });

  it('says DeviceClassCreated=False with the reason while the DeviceClass cannot be made, and nothing otherwise', () => {
    const d = discovery();
    const result = fold({ discovery: d, slices: [], nodes: new Map(), nodeGraceMs: 0, now: 0 });
    const without = discoveryStatus(d, result, [], T0);
    assert.equal(cond(without, 'DeviceClassCreated'), undefined);
    const problem = 'Discovery site/x: a name longer than 63 characters cannot have a DeviceClass';
    const withProblem = discoveryStatus(d, result, [], T0, undefined, problem);
    assert.deepEqual(
      [
        cond(withProblem, 'DeviceClassCreated')?.status,
        cond(withProblem, 'DeviceClassCreated')?.message,
      ],
      ['False', problem],
    );
  });
});
