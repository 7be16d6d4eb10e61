import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TopicError } from '../../../src/dataplane/errors.ts';
import {
  dataTopic,
  deviceTopicPrefix,
  eventsTopic,
  formatTopic,
  parseFilter,
  parseTopic,
  stateTopic,
  topicMatches,
} from '../../../src/dataplane/topics.ts';

describe('device topics', () => {
  it('are built from namespace, Device name and kind', () => {
    assert.equal(
      deviceTopicPrefix('default', 'cams-0a1b2c3d4e'),
      'edgebridge/v1/default/cams-0a1b2c3d4e',
    );
    assert.equal(dataTopic('default', 'cam'), 'edgebridge/v1/default/cam/data');
    assert.equal(
      dataTopic('default', 'cam', 'video.meta'),
      'edgebridge/v1/default/cam/data/video.meta',
    );
    assert.equal(stateTopic('apps', 'cam'), 'edgebridge/v1/apps/cam/state');
    assert.equal(eventsTopic('apps', 'cam'), 'edgebridge/v1/apps/cam/events');
  });

  it('refuse names that would change what a topic means', () => {
    for (const bad of ['+', '#', 'a/b', 'a\u0000b', '', 'UPPER', '-a'])
      assert.throws(() => dataTopic('default', bad), TopicError, JSON.stringify(bad));
    assert.throws(() => dataTopic('de/fault', 'cam'), TopicError);
    for (const stream of ['+', '#', 'a/b', '', 'x'.repeat(65), 'sp ace'])
      assert.throws(() => dataTopic('default', 'cam', stream), TopicError, JSON.stringify(stream));
  });

  it('parse back to what built them, and nothing else', () => {
    const cases = [
      { namespace: 'default', device: 'cam', kind: 'data' as const },
      { namespace: 'default', device: 'cam', kind: 'data' as const, stream: 's1' },
      { namespace: 'ns', device: 'a.b-c', kind: 'state' as const },
      { namespace: 'ns', device: 'a', kind: 'events' as const },
      { namespace: 'ns', device: 'a', kind: 'commands' as const, command: 'reboot' },
      { namespace: 'ns', device: 'a', kind: 'commands' as const, command: 'light/set' },
    ];
    for (const c of cases) assert.deepEqual(parseTopic(formatTopic(c)), c);
    for (const bad of [
      'edgebridge/v1/default/cam',
      'edgebridge/v1/default/cam/commands',
      'edgebridge/v1/default/cam/commands/',
      'edgebridge/v1/default/cam/commands/a//b',
      'edgebridge/v1/default/cam/commands/../x',
      `edgebridge/v1/default/cam/commands/${'a/'.repeat(9)}a`,
      'edgebridge/v1/default/cam/state/x',
      'edgebridge/v1/default/cam/data/a/b',
      'edgebridge/v2/default/cam/data',
      'other/v1/default/cam/data',
      '$SYS/broker/uptime',
      `edgebridge/v1/default/${'a'.repeat(2000)}/data`,
      'edgebridge/v1/default/ca\u0000m/data',
      '',
    ])
      assert.throws(() => parseTopic(bad), TopicError, JSON.stringify(bad.slice(0, 40)));
  });

  it('filters name a namespace; the device may be a wildcard', () => {
    assert.deepEqual(parseFilter('edgebridge/v1/ns/cam/#'), { namespace: 'ns', device: 'cam' });
    assert.deepEqual(parseFilter('edgebridge/v1/ns/cam'), { namespace: 'ns', device: 'cam' });
    assert.deepEqual(parseFilter('edgebridge/v1/ns/cam/data/+'), {
      namespace: 'ns',
      device: 'cam',
    });
    assert.deepEqual(parseFilter('edgebridge/v1/ns/cam/+'), { namespace: 'ns', device: 'cam' });
    assert.deepEqual(parseFilter('edgebridge/v1/ns/+/state'), {
      namespace: 'ns',
      device: undefined,
    });
    assert.deepEqual(parseFilter('edgebridge/v1/ns/#'), { namespace: 'ns', device: undefined });
    assert.deepEqual(parseFilter('edgebridge/v1/ns/+/commands/#'), {
      namespace: 'ns',
      device: undefined,
    });
    for (const bad of [
      '#',
      '+/v1/ns/cam/data',
      'edgebridge/#',
      'edgebridge/v1/#',
      'edgebridge/v1/+/cam/data',
      'edgebridge/v1/ns/cam#',
      'edgebridge/v1/ns/#/data',
      'edgebridge/v1/ns/ca+/data',
      'edgebridge/v1/ns/cam/commands/a+',
      'edgebridge/v1/ns/cam/state/x',
      '$SYS/#',
    ])
      assert.throws(() => parseFilter(bad), TopicError, bad);
  });

  it('match filters as MQTT does', () => {
    assert.equal(topicMatches('a/#', 'a'), true);
    assert.equal(topicMatches('a/#', 'a/b/c'), true);
    assert.equal(topicMatches('a/+/c', 'a/b/c'), true);
    assert.equal(topicMatches('a/+', 'a/b/c'), false);
    assert.equal(topicMatches('a/b', 'a/b/c'), false);
    assert.equal(topicMatches('#', '$SYS/x'), false);
    assert.equal(topicMatches('$SYS/#', '$SYS/x'), true);
  });
});
