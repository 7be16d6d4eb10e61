import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ByteBudget } from '../../../src/spool/byte-budget.ts';
import { isSettled } from './helpers.ts';

describe('ByteBudget', () => {
  it('grants at once what fits, and counts it', async () => {
    const budget = new ByteBudget(100, 40);
    await budget.take(60);
    assert.equal(budget.used, 100);
    assert.equal(budget.tryTake(1), false);
  });

  it('makes a taker wait until enough is given back', async () => {
    const budget = new ByteBudget(100, 90);
    const waiting = budget.take(50);
    assert.equal(budget.waiting, 1);
    budget.give(30);
    assert.equal(await isSettled(waiting), false);
    budget.give(30);
    await waiting;
    assert.equal(budget.used, 80);
    assert.equal(budget.waiting, 0);
  });

  it('serves waiters strictly in arrival order, even when a later one would fit', async () => {
    const budget = new ByteBudget(100, 100);
    const order: string[] = [];
    const big = budget.take(80).then(() => order.push('big'));
    const small = budget.take(10).then(() => order.push('small'));
    assert.equal(budget.tryTake(1), false, 'a newcomer may not jump the queue');
    budget.give(20);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, []);
    budget.give(80);
    await Promise.all([big, small]);
    assert.deepEqual(order, ['big', 'small']);
    assert.equal(budget.used, 90);
  });

  it('an abort removes the waiter, rejects with the reason, and lets the next one through', async () => {
    const budget = new ByteBudget(100, 100);
    const controller = new AbortController();
    const first = budget.take(80, controller.signal);
    const second = budget.take(10);
    budget.give(20);
    assert.equal(await isSettled(second), false);
    const reason = new Error('stop');
    controller.abort(reason);
    await assert.rejects(first, (err) => err === reason);
    await second;
    assert.equal(budget.waiting, 0);
    assert.equal(budget.used, 90);
  });

  it('rejects at once with the reason of an already aborted signal', async () => {
    const budget = new ByteBudget(100, 0);
    const reason = new Error('already');
    await assert.rejects(budget.take(10, AbortSignal.abort(reason)), (err) => err === reason);
    assert.equal(budget.used, 0);
  });

  it('failAll rejects every waiter and removes their abort listeners', async () => {
    const budget = new ByteBudget(10, 10);
    const controller = new AbortController();
    const a = budget.take(5, controller.signal);
    const b = budget.take(5);
    const err = new Error('closed');
    budget.failAll(err);
    await assert.rejects(a, (e) => e === err);
    await assert.rejects(b, (e) => e === err);
    controller.abort(new Error('late'));
    assert.equal(budget.waiting, 0);
    assert.equal(budget.used, 10);
  });

  it('force counts beyond the limit, and give never goes below zero', () => {
    const budget = new ByteBudget(10, 0);
    budget.force(25);
    assert.equal(budget.used, 25);
    budget.give(100);
    assert.equal(budget.used, 0);
  });
});
