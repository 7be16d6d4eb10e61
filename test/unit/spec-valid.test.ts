import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Discovery } from '../../src/api/types.ts';
import { handlerNameOf, specProblem } from '../../src/registry/spec-valid.ts';
import { KeyedRuns } from '../../src/registry/embedded/keyed-runs.ts';

function discovery(spec: unknown, generation = 2, conditions: unknown[] = []): Discovery {
  return {
    apiVersion: 'edgebridge.io/v1alpha1',
    kind: 'Discovery',
    metadata: { name: 'd', namespace: 'default', generation },
    spec: spec as Discovery['spec'],
    status: { conditions: conditions as never },
  };
}

const invalid = (observedGeneration?: number) => ({
  type: 'SpecValid',
  status: 'False',
  reason: 'InvalidSpec',
  message: 'spec.capacity: must be an integer',
  lastTransitionTime: '2026-01-01T00:00:00Z',
  ...(observedGeneration !== undefined ? { observedGeneration } : {}),
});

describe('specProblem', () => {
  it('is undefined for a valid Discovery', () => {
    assert.equal(specProblem(discovery({ handler: { name: 'usb' } })), undefined);
  });

  it('reads SpecValid=False of the current generation, and ignores an older one', () => {
    const spec = { handler: { name: 'usb' } };
    assert.equal(
      specProblem(discovery(spec, 2, [invalid(2)])),
      'spec.capacity: must be an integer',
    );
    assert.equal(specProblem(discovery(spec, 2, [invalid()])), 'spec.capacity: must be an integer');
    assert.equal(specProblem(discovery(spec, 3, [invalid(2)])), undefined);
  });

  it('finds a spec without a handler name, whatever its shape', () => {
    for (const spec of [
      undefined,
      null,
      'x',
      [],
      {},
      { handler: 'usb' },
      { handler: { name: 7 } },
    ]) {
      assert.equal(specProblem(discovery(spec)), 'spec.handler.name: is required');
      assert.equal(handlerNameOf(discovery(spec)), '');
    }
  });
});

describe('KeyedRuns', () => {
  it('runs at most one more time per key, however often asked while a run is under way', async () => {
    const runs = new KeyedRuns();
    let count = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const started = Promise.withResolvers<undefined>();
    const first = runs.run('k', async () => {
      count++;
      started.resolve(undefined);
      await gate;
    });
    await started.promise;
    const more = [1, 2, 3].map(() =>
      runs.run('k', () => {
        count++;
        return Promise.resolve();
      }),
    );
    const other = runs.run('other', () => {
      count += 100;
      return Promise.resolve();
    });
    await other;
    assert.equal(count, 101);
    release();
    await Promise.all([first, ...more]);
    assert.equal(count, 102);
  });
});
