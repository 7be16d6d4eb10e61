import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findHandler, handlerNames } from '../../discovery-handlers/registry.ts';
import { crds } from '../../src/api/crds.ts';
import { HANDLER_NAMES } from '../../src/api/types.ts';

/** The enum of every `handler` field in the generated CRDs. */
function crdHandlerEnums(): unknown[] {
  const found: unknown[] = [];
  const walk = (node: unknown, key: string): void => {
    if (node === null || typeof node !== 'object') return;
    if ((key === 'handler' || key === 'name') && 'enum' in node) {
      const e = (node as { enum: unknown[] }).enum;
      if (e.includes('simulated')) found.push([...e]);
    }
    for (const [k, v] of Object.entries(node)) walk(v, k);
  };
  walk(crds(), '');
  return found;
}

describe('the handler registry', () => {
  it('registers exactly the names the API accepts, each under its own name', () => {
    assert.deepEqual(handlerNames().sort(), [...HANDLER_NAMES].sort());
    for (const name of HANDLER_NAMES) assert.equal(findHandler(name)?.name, name);
  });

  it('is what the CRDs enumerate for Discovery spec.handler.name and Device spec.handler', () => {
    const enums = crdHandlerEnums();
    assert.equal(enums.length, 2);
    for (const e of enums) assert.deepEqual(e, handlerNames());
  });

  it('knows no name outside the list, nor inherited keys', () => {
    assert.equal(findHandler('zigbee'), undefined);
    assert.equal(findHandler('toString'), undefined);
  });
});
