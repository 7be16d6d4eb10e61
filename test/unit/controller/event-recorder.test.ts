import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import {
  KubeEventRecorder,
  type DropReason,
  type EventRecorderOptions,
} from '../../../src/controller/event-recorder.ts';
import type { EventWriter, KubeEvent } from '../../../src/controller/event-writer.ts';
import { TokenBucket } from '../../../src/controller/token-bucket.ts';
import { sleepOn } from '../../../src/reconcile/clock.ts';
import { FakeClock } from '../reconcile/fake-clock.ts';

const device = (name: string) => ({
  apiVersion: 'edgebridge.io/v1alpha1',
  kind: 'Device',
  name,
  namespace: 'ns',
  uid: `uid-${name}`,
});

/** Keeps what was written; `hold` keeps requests pending until released. */
class FakeWriter implements EventWriter {
  readonly events = new Map<string, KubeEvent>();
  creates = 0;
  patches = 0;
  hold = false;
  readonly #held: (() => void)[] = [];

  async #gate(): Promise<void> {
    if (this.hold) await new Promise<void>((resolve) => this.#held.push(resolve));
  }

  release(): void {
    this.hold = false;
    for (const r of this.#held.splice(0)) r();
  }

  async create(event: KubeEvent): Promise<void> {
    await this.#gate();
    this.creates++;
    this.events.set(event.metadata.name, structuredClone(event));
  }

  async patchSeries(
    _ns: string,
    name: string,
    series: { count: number; lastObservedTime: string },
  ): Promise<void> {
    await this.#gate();
    this.patches++;
    const e = this.events.get(name);
    if (e !== undefined) e.series = series;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

function setup(opts: Partial<EventRecorderOptions> = {}) {
  const clock = new FakeClock();
  const writer = new FakeWriter();
  const dropped: DropReason[] = [];
  const recorder = new KubeEventRecorder({
    writer,
    log: pino({ level: 'silent' }),
    instance: 'replica-1',
    clock,
    wallClock: () => 1_700_000_000_000 + clock.now(),
    metrics: { written: () => undefined, dropped: (r) => dropped.push(r) },
    ...opts,
  });
  return { clock, writer, dropped, recorder };
}

describe('TokenBucket', () => {
  it('gives a burst, then one token per refill period', () => {
    const b = new TokenBucket(3, 1000, 0);
    assert.deepEqual(
      [b.tryTake(0), b.tryTake(0), b.tryTake(0), b.tryTake(0)],
      [true, true, true, false],
    );
    assert.equal(b.waitMs(500), 500);
    assert.equal(b.tryTake(999), false);
    assert.equal(b.tryTake(1000), true);
    assert.equal(b.isFull(1000 + 3000), true);
  });
});

describe('KubeEventRecorder', () => {
  it('writes one Event with the reporting controller and instance, about the object', async () => {
    const { writer, recorder } = setup();
    recorder.record(device('cam'), 'Normal', 'Created', 'found by node-a');
    await settle();
    const [event] = writer.events.values();
    assert.ok(event !== undefined);
    assert.equal(event.reportingController, 'edgebridge.io/controller');
    assert.equal(event.reportingInstance, 'replica-1');
    assert.deepEqual(event.regarding, device('cam'));
    assert.equal(event.reason, 'Created');
    assert.equal(event.action, 'Created');
    assert.equal(event.note, 'found by node-a');
    assert.match(event.metadata.name, /^cam\.[0-9a-f]+$/);
    assert.equal(event.series, undefined);
    await recorder.close();
  });

  it('folds 1,000 repeats into one Event whose series count is 1,000, with one patch per flush', async () => {
    const { clock, writer, dropped, recorder } = setup({ seriesFlushMs: 1000 });
    for (let i = 0; i < 1000; i++) recorder.record(device('cam'), 'Warning', 'Conflict', 'same');
    await settle();
    clock.advance(1000);
    await settle();
    assert.equal(writer.events.size, 1);
    assert.equal(writer.creates, 1);
    assert.ok(writer.patches <= 2, `${writer.patches} patches`);
    assert.equal([...writer.events.values()][0]?.series?.count, 1000);
    assert.deepEqual(dropped, []);
    await recorder.close();
  });

  it('close() writes repeats still waiting for their flush', async () => {
    const { writer, recorder } = setup({ seriesFlushMs: 60_000 });
    recorder.record(device('cam'), 'Normal', 'NodeAdded', 'node-b');
    await settle();
    recorder.record(device('cam'), 'Normal', 'NodeAdded', 'node-b');
    await recorder.close();
    assert.equal([...writer.events.values()][0]?.series?.count, 2);
  });

  it('caps distinct Events per object at the burst, then one per refill period; other objects are not affected', async () => {
    const { clock, writer, dropped, recorder } = setup();
    for (let i = 0; i < 1000; i++)
      recorder.record(device('cam'), 'Normal', 'Changed', `change ${i}`);
    recorder.record(device('other'), 'Normal', 'Changed', 'change');
    await settle();
    clock.advance(10_000);
    await settle();
    assert.equal(writer.creates, 26);
    assert.equal(dropped.filter((r) => r === 'rate_limited').length, 975);
    clock.advance(5 * 60_000);
    recorder.record(device('cam'), 'Normal', 'Changed', 'after five minutes');
    recorder.record(device('cam'), 'Normal', 'Changed', 'and one more');
    await settle();
    assert.equal(writer.creates, 27);
    await recorder.close();
  });

  it('never blocks: with the API server stuck, the queue is bounded and overflow is counted', async () => {
    const { writer, dropped, recorder } = setup({ queueSize: 10 });
    writer.hold = true;
    for (let i = 0; i < 100; i++) recorder.record(device(`d${i}`), 'Normal', 'Created', 'x');
    // One is being written, ten wait, the rest are dropped.
    assert.equal(dropped.filter((r) => r === 'queue_full').length, 89);
    writer.release();
    await settle();
    assert.equal(writer.creates, 11);
    await recorder.close();
  });

  it('paces writes by the global rate limit', async () => {
    const { clock, writer, recorder } = setup({ globalBurst: 5, globalRefillMs: 1000 });
    for (let i = 0; i < 20; i++) recorder.record(device(`d${i}`), 'Normal', 'Created', 'x');
    await settle();
    assert.equal(writer.creates, 5);
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      await settle();
    }
    assert.equal(writer.creates, 8);
    void recorder.close();
  });

  it('caps the note and counts what arrives after close()', async () => {
    const { writer, dropped, recorder } = setup();
    recorder.record(device('cam'), 'Warning', 'Bad', 'x'.repeat(5000));
    await settle();
    assert.equal([...writer.events.values()][0]?.note.length, 1024);
    await recorder.close();
    await recorder.close();
    recorder.record(device('cam'), 'Warning', 'Bad', 'late');
    assert.deepEqual(dropped, ['closed']);
  });
});

describe('KubeEventRecorder with a turn to wait for', () => {
  it('writes nothing until its turn comes, then what was queued', async () => {
    let open: () => void = () => undefined;
    const turns: number[] = [];
    const { writer, recorder } = setup({
      waitTurn: (_signal, maxWaitMs) => {
        turns.push(maxWaitMs);
        return new Promise((resolve) => (open = resolve));
      },
    });
    recorder.record(device('a'), 'Normal', 'Created', 'found');
    recorder.record(device('b'), 'Normal', 'Created', 'found');
    await settle();
    assert.equal(writer.creates, 0);
    assert.deepEqual(turns, [30_000]);
    open();
    await settle();
    open();
    await settle();
    assert.equal(writer.creates, 2);
    await recorder.close();
  });

  it('waits no longer than the longest wait from when an Event was queued', async () => {
    const turns: number[] = [];
    const { clock, writer, recorder } = setup({
      turnMaxWaitMs: 10_000,
      waitTurn: (signal, maxWaitMs) => {
        turns.push(maxWaitMs);
        return sleepOn(clock, maxWaitMs, signal);
      },
    });
    recorder.record(device('a'), 'Normal', 'Created', 'found');
    recorder.record(device('b'), 'Normal', 'Created', 'found');
    await settle();
    clock.advance(10_000);
    await settle();
    // The second waited as long as the first: it goes at once, without another wait.
    assert.equal(writer.creates, 2);
    assert.deepEqual(turns, [10_000]);
    await recorder.close();
  });
});
