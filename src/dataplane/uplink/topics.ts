// Topic names: the node broker's device topics, MQTT filter matching, and the
// mapping of node topics to and from the cloud broker. Pure functions.

/** Root of every device topic on the node broker. */
export const TOPIC_ROOT = 'edgebridge/v1';

/** What a device topic names: `edgebridge/v1/<namespace>/<device>/<kind>[/<rest>]`. */
export interface DeviceTopic {
  namespace: string;
  device: string;
  /** 'data', 'state', 'events', 'commands', ... */
  kind: string;
  /** What follows the kind (a data stream, a command name); '' if nothing. */
  rest: string;
}

/** A Kubernetes object name (DNS subdomain) or namespace (DNS label). */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Parses a device topic; undefined for any other topic. */
export function parseDeviceTopic(topic: string): DeviceTopic | undefined {
  if (!topic.startsWith(`${TOPIC_ROOT}/`)) return undefined;
  const parts = topic.slice(TOPIC_ROOT.length + 1).split('/');
  const [namespace, device, kind] = parts;
  if (namespace === undefined || device === undefined || kind === undefined || kind === '') {
    return undefined;
  }
  if (!NAME.test(namespace) || !NAME.test(device)) return undefined;
  return { namespace, device, kind, rest: parts.slice(3).join('/') };
}

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

/** Whether `topic` matches the MQTT filter (`+` one level, `#` the rest, including none). */
export function matchesFilter(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    const part = t[i];
    if (part === undefined) return false;
    if (level !== '+' && level !== part) return false;
  }
  return f.length === t.length;
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
 * The node topic for a cloud command topic `<prefix>/commands/<namespace>/<device>/<name...>`:
 * `edgebridge/v1/<namespace>/<device>/commands/<name...>`. Throws a message
 * saying what is wrong with it otherwise.
 */
export function commandTopic(prefix: string, topic: string): DeviceTopic & { topic: string } {
  const root = `${prefix}/commands/`;
  if (!topic.startsWith(root))
    throw new Error(`topic ${JSON.stringify(topic)} is not under ${root}`);
  const parts = topic.slice(root.length).split('/');
  const [namespace, device, ...name] = parts;
  if (namespace === undefined || !NAME.test(namespace)) {
    throw new Error(`topic ${JSON.stringify(topic)}: bad namespace`);
  }
  if (device === undefined || !NAME.test(device)) {
    throw new Error(`topic ${JSON.stringify(topic)}: bad device name`);
  }
  if (name.length === 0 || name.some((p) => p === '')) {
    throw new Error(`topic ${JSON.stringify(topic)}: needs a command name with no empty levels`);
  }
  const rest = name.join('/');
  return {
    namespace,
    device,
    kind: 'commands',
    rest,
    topic: `${TOPIC_ROOT}/${namespace}/${device}/commands/${rest}`,
  };
}
