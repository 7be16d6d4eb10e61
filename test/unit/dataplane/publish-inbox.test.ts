import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PublishPacket } from 'aedes';
import type { Decision } from '../../../src/dataplane/access.ts';
import { PublishInbox, type PublishInboxOptions } from '../../../src/dataplane/publish-inbox.ts';

function packet(topic: string): PublishPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(topic), qos: 1, retain: false, dup: false };
}

/** An inbox whose decisions, stores and completions are recorded in one log. */
function recorded(overrides: Partial<PublishInboxOptions> = {}, withoutStore = false) {
  const log: string[] = [];
  const stores: string[][] = [];
  const options: PublishInboxOptions = {
    decide: (p) => (p.topic.startsWith('bad') ? { ok: false, reason: 'no grant' } : { ok: true }),
    refused: (p, reason) => {
      log.push(`refused ${p.topic}: ${reason}`);
      return new Error(`refused ${p.topic}`);
    },
    store: (packets) => {
      stores.push(packets.map((p) => p.topic));
      return Promise.resolve();
    },
    storeFailed: (packets, err) => {
      log.push(`store failed for ${packets.length}: ${(err as Error).message}`);
      return new Error('store failed');
    },
    passed: (count) => log.push(`passed ${count}`),
    ...overrides,
  };
  if (withoutStore) delete options.store;
  const inbox = new PublishInbox(options);
  const completions: Promise<string>[] = [];
  const add = (topic: string): void => {
    completions.push(
      new Promise((resolve) =>
        inbox.add(packet(topic), (err) => {
          const line = `${topic}: ${err === null ? 'ok' : err.message}`;
          log.push(line);
          resolve(line);
        }),
      ),
    );
  };
  return { inbox, log, stores, add, all: () => Promise.all(completions) };
}

describe('a client’s publish inbox', () => {
  it('stores one turn’s publishes with one call and completes them in order', async () => {
    const r = recorded();
    r.add('a');
    r.add('b');
    r.add('c');
    await r.all();
    assert.deepEqual(r.stores, [['a', 'b', 'c']]);
    assert.deepEqual(r.log, ['passed 3', 'a: ok', 'b: ok', 'c: ok']);
  });

  it('completes a later batch only after an earlier one, however the stores finish', async () => {
    let releaseFirst: () => void = () => undefined;
    const first = new Promise<void>((resolve) => (releaseFirst = resolve));
    const stores: string[][] = [];
    const r = recorded({
      store: (packets) => {
        stores.push(packets.map((p) => p.topic));
        return stores.length === 1 ? first : Promise.resolve();
      },
    });
    r.add('a');
    await new Promise((resolve) => setImmediate(resolve));
    r.add('b');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(stores, [['a'], ['b']], 'the second batch is stored without waiting');
    assert.deepEqual(r.log, [], 'nothing completes before the first store');
    releaseFirst();
    await r.all();
    assert.deepEqual(r.log, ['passed 1', 'a: ok', 'passed 1', 'b: ok']);
  });

  it('stores what precedes a refusal; the refused publish and those after it fail, logged once', async () => {
    const r = recorded();
    r.add('a');
    r.add('bad-1');
    r.add('c');
    await r.all();
    assert.deepEqual(r.stores, [['a']]);
    assert.deepEqual(r.log, [
      'refused bad-1: no grant',
      'passed 1',
      'a: ok',
      'bad-1: refused bad-1',
      'c: refused bad-1',
    ]);
  });

  it('with decideEach (MQTT 5), refuses each refused publish alone and stores the rest of the batch', async () => {
    const r = recorded({ decideEach: true });
    r.add('a');
    r.add('bad-1');
    r.add('c');
    r.add('bad-2');
    await r.all();
    assert.deepEqual(r.stores, [['a', 'c']]);
    assert.deepEqual(r.log, [
      'refused bad-1: no grant',
      'refused bad-2: no grant',
      'passed 2',
      'a: ok',
      'bad-1: refused bad-1',
      'c: ok',
      'bad-2: refused bad-2',
    ]);
  });

  it('completes with null when storeFailed answered the publishes itself (MQTT 5 PUBACK 0x97); refusals keep theirs', async () => {
    const r = recorded({
      decideEach: true,
      store: () => Promise.reject(new Error('spool full')),
      storeFailed: () => null,
    });
    r.add('a');
    r.add('bad-1');
    await r.all();
    assert.deepEqual(r.log, ['refused bad-1: no grant', 'a: ok', 'bad-1: refused bad-1']);
  });

  it('fails every publish of a batch whose store rejects', async () => {
    const r = recorded({ store: () => Promise.reject(new Error('spool full')) });
    r.add('a');
    r.add('b');
    await r.all();
    assert.deepEqual(r.log, [
      'store failed for 2: spool full',
      'a: store failed',
      'b: store failed',
    ]);
  });

  it('keeps the order when a decision needs a lookup, and turns a failed lookup into a refusal', async () => {
    const stores: string[][] = [];
    // The slow lookup answers when the test says, not after a timer that a
    // loaded machine may fire before the later publishes are even added.
    let answerSlow = (): void => undefined;
    const slow = new Promise<Decision>((resolve) => {
      answerSlow = () => resolve({ ok: true });
    });
    const r = recorded({
      decide: (p): Decision | Promise<Decision> => {
        if (p.topic === 'slow') return slow;
        if (p.topic === 'broken') return Promise.reject(new Error('registry down'));
        return { ok: true };
      },
      store: (packets) => {
        stores.push(packets.map((p) => p.topic));
        return Promise.resolve();
      },
    });
    r.add('slow');
    r.add('a');
    await new Promise((resolve) => setImmediate(resolve));
    r.add('b');
    r.add('broken');
    await new Promise((resolve) => setImmediate(resolve));
    answerSlow();
    await r.all();
    assert.deepEqual(stores, [['slow', 'a'], ['b']]);
    // Decisions run ahead of completions; completions keep the order.
    assert.deepEqual(r.log, [
      'refused broken: access check failed: registry down',
      'passed 2',
      'slow: ok',
      'a: ok',
      'passed 1',
      'b: ok',
      'broken: refused broken',
    ]);
  });

  it('lets publishes through at once without a store', async () => {
    const r = recorded({}, true);
    r.add('a');
    await r.all();
    assert.deepEqual(r.log, ['passed 1', 'a: ok']);
  });
});
