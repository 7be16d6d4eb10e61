import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { urlForLog } from '../../src/util/url-for-log.ts';

describe('URLs in logs', () => {
  it('lose their user and password, keep the rest', () => {
    assert.equal(
      urlForLog('mqtts://edge:hunter2@cloud.example:8883/x'),
      'mqtts://cloud.example:8883/x',
    );
    assert.equal(urlForLog('mqtt://token-only@10.0.0.1:1883'), 'mqtt://10.0.0.1:1883');
    assert.equal(urlForLog('ws://h/mqtt'), 'ws://h/mqtt');
  });

  it('text that is not a URL is not shown at all', () => {
    assert.equal(urlForLog('mqtt://a b:hunter2@'), '(not a URL)');
    assert.equal(urlForLog('hunter2'), '(not a URL)');
  });
});
