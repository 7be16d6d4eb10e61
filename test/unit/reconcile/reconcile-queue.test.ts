import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { pino } from 'pino';
import {
  ReconcileQueue,
  TerminalError,
  UnavailableError,
  done,
  requeue,
  requeueAfter,
  type Outcome,
  type QueueMetrics,
  type Result,
} from '../../../src/reconcile/index.ts';
import { FakeClock } from './fake-clock.ts';

/** What a fake reconciler does for one call: answer with a result, throw, or wait for the test. */
type Step = Result | Error | Gate;

class Gate {
  open!: (result?: Result) => void;
  readonly opened = new Promise<Result>((resolve) => (this.open = (r = done) => resolve(r)));
}

/**
 * A reconciler driven step by step: each call for a key takes that key's next
 * scripted step (done once the script is used up), and every call is recorded
 * along with how many ran for the same key at once.
 */
class FakeReconciler {
  readonly calls: string[] = [];
  readonly signals: AbortSignal[] = [];
  readonly #scripts = new Map<string, Step[]>();
  readonly #running = new Map<string, number>();
  maxSameKey = 0;
  running = 0;
  maxRunning = 0;

  script(key: string, ...steps: Step[]): this {
    this.#scripts.set(key, steps);
    return this;
  }

  async reconcile(key: string, signal: AbortSignal): Promise<Result> {
    this.calls.push(key);
    this.signals.push(signal);
    const same = (this.#running.get(key) ?? 0) + 1;
    this.#running.set(key, same);
    this.maxSameKey = Math.max(this.maxSameKey, same);
    this.maxRunning = Math.max(this.maxRunning, ++this.running);
    try {
      const step = this.#scripts.get(key)?.shift() ?? done;
      if (step instanceof Error) throw step;
      if (step instanceof Gate) return await step.opened;
      return step;
    } finally {
      this.#running.set(key, (this.#running.get(key) ?? 1) - 1);
      this.running--;
    }
  }

  count(key: string): number {
    return this.calls.filter((k) => k === key).length;
  }
}

class RecordingMetrics implements QueueMetrics {
  readonly outcomes: Outcome[] = [];
  adds = 0;
  retries = 0;
  lastDepth = -1;
  depth(n: number): void {
    this.lastDepth = n;
  }
  added(): void {
    this.adds++;
  }
  retried(): void {
    this.retries++;
  }
  reconciled(outcome: Outcome): void {
    this.outcomes.push(outcome);
  }
}

/** Lets every promise that can settle settle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await turn();
}

/** A queue on a fake clock without jitter (backoff 100 ms doubling to 1 s), already running. */
function started(reconciler: FakeReconciler, opts: { workers?: number; drainMs?: number } = {}) {
  const clock = new FakeClock();
  const metrics = new RecordingMetrics();
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'warn' },
    { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
  );
  const queue = new ReconcileQueue({
    name: 'test',
    reconciler,
    log,
    clock,
    metrics,
    backoff: { initialMs: 100, capMs: 1000, random: () => 0.5 },
    ...opts,
  });
  const abort = new AbortController();
  const running = queue.run(abort.signal);
  return { queue, clock, metrics, lines, abort, running };
}

describe('a reconcile queue', () => {
  it('reconciles a key added many times before its turn once', async () => {
    const gate = new Gate();
    const r = new FakeReconciler().script('busy', gate);
    const { queue, abort, running, metrics } = started(r, { workers: 1 });
    queue.add('busy');
    await settle();
    for (let i = 0; i < 5; i++) queue.add('k');
    gate.open();
    await settle();
    assert.equal(r.count('k'), 1);
    assert.equal(metrics.adds, 2);
    abort.abort();
    await running;
  });

  it('reconciles a key added during its reconcile once more afterwards, never twice at once', async () => {
    const first = new Gate();
    const r = new FakeReconciler().script('k', first);
    const { queue, abort, running } = started(r, { workers: 4 });
    queue.add('k');
    await settle();
    queue.add('k');
    queue.add('k');
    await settle();
    assert.equal(r.count('k'), 1, 'not handed to a second worker while the first runs');
    first.open();
    await settle();
    assert.equal(r.count('k'), 2);
    assert.equal(r.maxSameKey, 1);
    abort.abort();
    await running;
  });

  it('reconciles other keys while one key’s reconcile is stuck, up to the number of workers', async () => {
    const stuck = new Gate();
    const r = new FakeReconciler()
      .script('large', stuck)
      .script('b', new Gate())
      .script('c', new Gate());
    const { queue, abort, running, clock } = started(r, { workers: 3, drainMs: 50 });
    queue.add('large');
    queue.add('b');
    queue.add('c');
    queue.add('d');
    await settle();
    assert.equal(r.maxRunning, 3);
    assert.equal(r.count('d'), 0, 'a fourth key waits for a free worker');
    stuck.open();
    await settle();
    assert.equal(r.count('d'), 1, 'the freed worker takes it');
    abort.abort();
    await settle();
    clock.advance(50);
    await running;
  });

  it('requeues a key whose reconcile failed after its backoff, growing per failure, and resets it on success', async () => {
    const r = new FakeReconciler().script(
      'k',
      new UnavailableError('registry down'),
      new Error('socket hang up'),
      done,
      new UnavailableError('down again'),
    );
    const { queue, clock, abort, running, metrics, lines } = started(r);
    queue.add('k');
    await settle();
    assert.equal(r.count('k'), 1);
    clock.advance(99);
    await settle();
    assert.equal(r.count('k'), 1, 'not before its first backoff');
    clock.advance(1);
    await settle();
    assert.equal(r.count('k'), 2);
    clock.advance(199);
    await settle();
    assert.equal(r.count('k'), 2, 'the second backoff is twice the first');
    clock.advance(1);
    await settle();
    assert.equal(r.count('k'), 3);
    queue.add('k');
    await settle();
    assert.equal(r.count('k'), 4, 'fails again after a success');
    clock.advance(100);
    await settle();
    assert.equal(r.count('k'), 5, 'and waits the initial delay again');
    assert.deepEqual(metrics.outcomes, ['error', 'error', 'done', 'error', 'done']);
    assert.equal(metrics.retries, 3);
    assert.equal(lines[0]?.msg, 'reconcile failed; retrying with backoff');
    assert.equal(lines[0]?.key, 'k');
    assert.equal(lines[0]?.retryInMs, 100);
    abort.abort();
    await running;
  });

  it('never retries a terminal error; the key is reconciled again only when added again', async () => {
    const r = new FakeReconciler().script('k', new TerminalError('spec.handler.name is missing'));
    const { queue, clock, abort, running, metrics, lines } = started(r);
    queue.add('k');
    await settle();
    clock.advance(60_000);
    await settle();
    assert.equal(r.count('k'), 1);
    assert.deepEqual(metrics.outcomes, ['terminal']);
    assert.equal(metrics.retries, 0);
    const line = lines.find((l) => l.msg === 'reconcile failed; not retried until the key changes');
    assert.equal(line?.code, 'EDGEBRIDGE_RECONCILE_TERMINAL');
    queue.add('k');
    await settle();
    assert.equal(r.count('k'), 2);
    abort.abort();
    await running;
  });

  it('reconciles again after the delay a result asks for, and with backoff on a requeue result', async () => {
    const r = new FakeReconciler().script('grace', requeueAfter(5000)).script('busy', requeue);
    const { queue, clock, abort, running, metrics } = started(r);
    queue.add('grace');
    queue.add('busy');
    await settle();
    clock.advance(100);
    await settle();
    assert.equal(r.count('busy'), 2, 'requeued after its backoff');
    assert.equal(r.count('grace'), 1);
    clock.advance(4900);
    await settle();
    assert.equal(r.count('grace'), 2, 'requeued when its delay ends');
    assert.deepEqual(metrics.outcomes.slice(0, 2).sort(), ['requeue', 'requeue_after']);
    abort.abort();
    await running;
  });

  it('on shutdown aborts the reconciles under way, waits for them, and reconciles no waiting key', async () => {
    const gate = new Gate();
    const r = new FakeReconciler().script('k', gate);
    const { queue, abort, running, metrics } = started(r, { workers: 1 });
    queue.add('k');
    queue.add('waiting');
    await settle();
    let ended = false;
    void running.then(() => (ended = true));
    abort.abort();
    await settle();
    assert.equal(r.signals[0]?.aborted, true, 'the reconciler’s signal aborted');
    assert.equal(ended, false, 'run() waits for the reconcile under way');
    gate.open();
    await running;
    assert.equal(r.count('waiting'), 0);
    assert.equal(metrics.lastDepth, 0);
    queue.add('late');
    await settle();
    assert.equal(r.count('late'), 0, 'an add after shutdown is ignored');
  });

  it('abandons a reconcile that ignores its signal at the drain deadline, and says which', async () => {
    const r = new FakeReconciler().script('stuck', new Gate());
    const { queue, clock, abort, running, lines } = started(r, { drainMs: 2000 });
    queue.add('stuck');
    await settle();
    abort.abort();
    await settle();
    clock.advance(2000);
    await running;
    const line = lines.find(
      (l) => l.msg === 'reconciles still under way at the shutdown deadline; abandoned',
    );
    assert.deepEqual(line?.abandoned, ['stuck']);
  });

  it('reports how long the longest reconcile under way has run', async () => {
    const gate = new Gate();
    const r = new FakeReconciler().script('k', gate);
    const { queue, clock, abort, running } = started(r);
    assert.equal(queue.busyForMs(), undefined);
    queue.add('k');
    await settle();
    clock.advance(1500);
    assert.equal(queue.busyForMs(), 1500);
    gate.open();
    await settle();
    assert.equal(queue.busyForMs(), undefined);
    abort.abort();
    await running;
  });

  it('refuses to run twice', async () => {
    const { queue, abort, running } = started(new FakeReconciler());
    await assert.rejects(queue.run(abort.signal), { code: 'EDGEBRIDGE_QUEUE_STARTED' });
    abort.abort();
    await running;
  });
});
