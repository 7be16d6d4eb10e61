import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isSharedFilter, parseSharedFilter } from '../../../src/dataplane/shared-filter.ts';

describe('shared subscription filters', () => {
  it('reads the group and the filter of $share/<group>/<filter>', () => {
    assert.deepEqual(parseSharedFilter('$share/g/edgebridge/v1/lab/cam/#'), {
      ok: true,
      group: 'g',
      filter: 'edgebridge/v1/lab/cam/#',
    });
    assert.deepEqual(parseSharedFilter('$share/workers-1/+/x'), {
      ok: true,
      group: 'workers-1',
      filter: '+/x',
    });
  });

  it('tells plain filters from shared ones', () => {
    assert.equal(isSharedFilter('$share/g/a'), true);
    assert.equal(isSharedFilter('edgebridge/v1/lab/cam/#'), false);
    assert.equal(isSharedFilter('$SYS/broker'), false);
    assert.equal(parseSharedFilter('edgebridge/v1/lab/cam').ok, false);
  });

  it('refuses an empty group, a group with a wildcard, and a missing or malformed filter', () => {
    for (const topic of [
      '$share//a/b',
      '$share/g+/a',
      '$share/#/a',
      '$share/+/a',
      '$share/g',
      '$share/g/',
      '$share/g/a/#/b',
      '$share/g/a+/b',
      '$share/g/a\u0000',
    ]) {
      const parsed = parseSharedFilter(topic);
      assert.equal(parsed.ok, false, topic);
      assert.ok(!parsed.ok && parsed.reason.length > 0, topic);
    }
  });
});
