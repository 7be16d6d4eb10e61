import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObjectCache } from '../../../src/controller/object-cache.ts';

interface Obj {
  metadata: { name: string; namespace: string; resourceVersion: string };
  v?: string;
}
const obj = (name: string, rv: string, v?: string): Obj => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv },
  ...(v !== undefined ? { v } : {}),
});

describe('ObjectCache', () => {
  it('tells changed and removed objects apart by identity, and is synced after the first list', () => {
    const cache = new ObjectCache<Obj>();
    assert.equal(cache.synced, false);
    const a = obj('a', '1');
    const b = obj('b', '1');
    assert.deepEqual(cache.replace([a, b]).changed.length, 2);
    assert.equal(cache.synced, true);
    const b2 = obj('b', '2');
    const delta = cache.replace([b2]);
    assert.deepEqual(
      delta.changed.map((c) => [c.object, c.previous]),
      [[b2, b]],
    );
    assert.deepEqual(delta.removed, [a]);
  });

  it('serves its own newer write until the informer shows it', () => {
    const cache = new ObjectCache<Obj>();
    cache.replace([obj('a', '5', 'old')]);
    cache.wrote('ns/a', obj('a', '7', 'mine'));
    assert.equal(cache.get('ns/a')?.v, 'mine');
    // An older event arrives first: the write still wins.
    cache.replace([obj('a', '6', 'between')]);
    assert.equal(cache.get('ns/a')?.v, 'mine');
    cache.replace([obj('a', '7', 'informer')]);
    assert.equal(cache.get('ns/a')?.v, 'informer');
  });

  it('ignores a write the informer has already shown', () => {
    const cache = new ObjectCache<Obj>();
    cache.replace([obj('a', '8', 'informer')]);
    cache.wrote('ns/a', obj('a', '8', 'answer'));
    assert.equal(cache.get('ns/a')?.v, 'informer');
  });

  it('forgets a write once the object is seen deleted after it (a hand deletion)', () => {
    const cache = new ObjectCache<Obj>();
    cache.replace([]);
    cache.wrote('ns/a', obj('a', '3', 'created'));
    cache.replace([obj('a', '3', 'informer')]);
    cache.wrote('ns/a', obj('a', '4', 'status'));
    cache.replace([obj('a', '4', 'informer')]);
    cache.replace([]);
    assert.equal(cache.get('ns/a'), undefined);
  });

  it('hides an object it deleted until the informer drops it', () => {
    const cache = new ObjectCache<Obj>();
    cache.replace([obj('a', '3')]);
    cache.wrote('ns/a', null, '3');
    assert.equal(cache.get('ns/a'), undefined);
    cache.replace([]);
    assert.equal(cache.get('ns/a'), undefined);
    // Created again by someone: the informer's copy counts.
    cache.replace([obj('a', '9', 'again')]);
    assert.equal(cache.get('ns/a')?.v, 'again');
  });

  it('takes single watch events, and settles its own writes on them', () => {
    const cache = new ObjectCache<Obj>();
    cache.replace([]);
    const a1 = obj('a', '1');
    assert.deepEqual(cache.apply('ADDED', a1), {
      changed: [{ object: a1, previous: undefined }],
      removed: [],
    });
    cache.wrote('ns/a', obj('a', '3', 'mine'));
    cache.apply('MODIFIED', obj('a', '2', 'older'));
    assert.equal(cache.get('ns/a')?.v, 'mine');
    cache.apply('MODIFIED', obj('a', '3', 'informer'));
    assert.equal(cache.get('ns/a')?.v, 'informer');
    const gone = cache.apply('DELETED', obj('a', '4'));
    assert.equal(gone.removed.length, 1);
    assert.equal(cache.get('ns/a'), undefined);
    assert.equal(cache.size, 0);
  });
});
