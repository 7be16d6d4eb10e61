import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../../../src/controller/broker-workloads.ts';
import {
  classKey,
  planDeviceClass,
  type OwnedClass,
} from '../../../src/controller/device-class-plan.ts';
import { deviceClassFor } from '../../../src/dra/device-class.ts';

function ours(name: string, ns: string, discovery: string, extra = {}): OwnedClass {
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      labels: {
        [LABEL_MANAGED_BY]: MANAGED_BY,
        'edgebridge.io/namespace': ns,
        'edgebridge.io/discovery': discovery,
      },
      ...extra,
    },
  };
}

describe('the plan for a Discovery’s DeviceClass', () => {
  it('creates deviceClassFor()’s class, labelled as the controller’s, for a Discovery without one', () => {
    const plan = planDeviceClass('site', 'cams', true, []);
    const wanted = deviceClassFor('site', 'cams');
    assert.deepEqual(plan, {
      create: {
        ...wanted,
        metadata: {
          ...wanted.metadata,
          labels: { ...wanted.metadata.labels, [LABEL_MANAGED_BY]: MANAGED_BY },
        },
      },
      delete: [],
    });
    assert.equal(plan.create && classKey(plan.create), 'site/cams');
  });

  it('leaves an existing class as it is (an admin may have edited its selectors), even one being deleted', () => {
    assert.deepEqual(
      planDeviceClass('site', 'cams', true, [ours('cams.site.edgebridge.io', 'site', 'cams')]),
      {
        delete: [],
      },
    );
    const going = ours('cams.site.edgebridge.io', 'site', 'cams', {
      deletionTimestamp: '2026-12-03T19:00:00Z',
    });
    assert.deepEqual(planDeviceClass('site', 'cams', true, [going]), { delete: [] });
  });

  it('deletes the classes of a Discovery that is gone or being deleted, not those already going', () => {
    const a = ours('cams.site.edgebridge.io', 'site', 'cams');
    const b = ours('cams.site.edgebridge.io', 'site', 'cams', {
      deletionTimestamp: '2026-12-03T19:00:00Z',
    });
    assert.deepEqual(planDeviceClass('site', 'cams', false, [a, b]), { delete: [a] });
    assert.deepEqual(planDeviceClass('site', 'cams', false, []), { delete: [] });
  });

  it('reports a name that cannot have a class, once as a problem, and plans no write', () => {
    const long = 'd'.repeat(64);
    const plan = planDeviceClass('site', long, true, []);
    assert.equal(plan.create, undefined);
    assert.deepEqual(plan.delete, []);
    assert.match(plan.problem ?? '', /longer than 63 characters cannot have a DeviceClass/);
  });

  it('knows a class as the controller’s only by all three labels', () => {
    assert.equal(classKey(ours('x', 'site', 'cams')), 'site/cams');
    const handMade = deviceClassFor('site', 'cams');
    assert.equal(classKey(handMade), undefined);
    const noNamespace = ours('x', 'site', 'cams');
    delete noNamespace.metadata.labels?.['edgebridge.io/namespace'];
    assert.equal(classKey(noNamespace), undefined);
  });
});
