import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mqttDebugOptions } from '../../../src/dataplane/mqtt-debug.ts';

describe('mqttDebugOptions', () => {
  it("silences mqtt.js's debug logger unless DEBUG names mqttjs", () => {
    assert.equal(typeof mqttDebugOptions({}).log, 'function');
    assert.equal(typeof mqttDebugOptions({ DEBUG: 'express:*' }).log, 'function');
    assert.deepEqual(mqttDebugOptions({ DEBUG: 'mqttjs*' }), {});
    assert.deepEqual(mqttDebugOptions({ DEBUG: 'foo,mqttjs:client' }), {});
  });
});
