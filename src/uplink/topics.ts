// The mapping of node topics to and from the cloud broker. Pure functions;
// the node's own topic scheme and filter matching are ../topics.ts.
import { TopicError } from '../dataplane/errors.ts';
import { commandsTopic, parseTopic, type DeviceTopic } from '../dataplane/topics.ts';

/** Throws a message a user can act on unless `filter` is a valid MQTT topic filter. */
export function checkFilter(filter: string): void {
  if (filter === '') throw new Error('a topic filter must not be empty');
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    if (level === '#' && i !== levels.length - 1) {
      throw new Error(`topic filter ${JSON.stringify(filter)}: '#' must be the last level`);
    }
    if (level !== '#' && level !== '+' && /[#+]/.test(level)) {
      throw new Error(`topic filter ${JSON.stringify(filter)}: a wildcard must be a whole level`);
    }
  });
}

/** Expands `{cluster}` and `{node}` in the configured prefix; the result names where this node's data goes. */
export function expandPrefix(prefix: string, cluster: string, node: string): string {
  return prefix.replaceAll('{cluster}', cluster).replaceAll('{node}', node).replace(/\/+$/, '');
}

/** The cloud topic for a node topic: `<prefix>/<original topic>`. */
export function remoteTopic(prefix: string, topic: string): string {
  return `${prefix}/${topic}`;
}

/**
 * The node topic for a cloud command topic `<prefix>/commands/<namespace>/<device>/<name>`:
 * `edgebridge/v1/<namespace>/<device>/commands/<name>`. Throws a message
 * saying what is wrong with it otherwise.
 */
export function commandTopic(prefix: string, topic: string): DeviceTopic & { topic: string } {
  const root = `${prefix}/commands/`;
  if (!topic.startsWith(root))
    throw new Error(`topic ${JSON.stringify(topic)} is not under ${root}`);
  const [namespace = '', device = '', ...name] = topic.slice(root.length).split('/');
  try {
    const target = commandsTopic(namespace, device, name.join('/'));
    return { ...parseTopic(target), topic: target };
  } catch (err) {
    if (err instanceof TopicError)
      throw new Error(`topic ${JSON.stringify(topic.slice(0, 200))}: ${err.message}`);
    throw err;
  }
}
