// The node broker's topic scheme (DESIGN.md, "Topics"):
//   edgebridge/v1/<namespace>/<device>/data[/<stream>]   device data
//   edgebridge/v1/<namespace>/<device>/state             retained: online / offline
//   edgebridge/v1/<namespace>/<device>/events            attach/detach and other events
//   edgebridge/v1/<namespace>/<device>/commands/<name>   a pod's (or the cloud's) command to the device
// The one module for these names: the broker, its access rules, the uplink and
// handlers all build, parse and match topics here. Builders refuse names that would change a topic's meaning (MQTT wildcards,
// separators, NUL); the parsers read untrusted topics and filters from clients.
import { TopicError } from './errors.ts';

export const TOPIC_ROOT = 'edgebridge/v1';
export const TOPIC_KINDS = ['data', 'state', 'events', 'commands'] as const;
export type TopicKind = (typeof TOPIC_KINDS)[number];

/** A Kubernetes namespace: a DNS label. */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A Device name: a DNS subdomain. */
const DEVICE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** A data stream under data/: one level of letters, digits and ._- . */
const STREAM = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A command name under commands/: up to 8 such levels (`reboot`, `light/set`). */
const COMMAND = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}){0,7}$/;
/** MQTT allows 65535 bytes; ours are far shorter, and a cap keeps matching cheap. */
const MAX_TOPIC_BYTES = 1024;

/** One device topic, parsed. */
export interface DeviceTopic {
  namespace: string;
  device: string;
  kind: TopicKind;
  /** Only for data. */
  stream?: string;
  /** Only for commands, which always name one. */
  command?: string;
}

/** A subscription filter, as far as access control cares: whose devices it can match. */
export interface DeviceFilter {
  namespace: string;
  /** Undefined when the device level is a wildcard (+ or #): every device in the namespace. */
  device: string | undefined;
}

function check(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) {
    throw new TopicError(`${what} ${JSON.stringify(value.slice(0, 64))} is not valid in a topic`);
  }
  return value;
}

/** True if `name` can be a stream name under data/. */
export function isStreamName(name: string): boolean {
  return STREAM.test(name);
}

/** edgebridge/v1/<namespace>/<device>: the prefix a pod is given for its device. */
export function deviceTopicPrefix(namespace: string, device: string): string {
  return `${TOPIC_ROOT}/${check(namespace, NAMESPACE, 'namespace')}/${check(device, DEVICE, 'device name')}`;
}

export function dataTopic(namespace: string, device: string, stream?: string): string {
  const base = `${deviceTopicPrefix(namespace, device)}/data`;
  return stream === undefined ? base : `${base}/${check(stream, STREAM, 'stream name')}`;
}

export function stateTopic(namespace: string, device: string): string {
  return `${deviceTopicPrefix(namespace, device)}/state`;
}

export function eventsTopic(namespace: string, device: string): string {
  return `${deviceTopicPrefix(namespace, device)}/events`;
}

export function commandsTopic(namespace: string, device: string, command: string): string {
  return `${deviceTopicPrefix(namespace, device)}/commands/${check(command, COMMAND, 'command name')}`;
}

/** The topic for a parsed DeviceTopic (the inverse of parseTopic). */
export function formatTopic(t: DeviceTopic): string {
  if (t.kind === 'data') return dataTopic(t.namespace, t.device, t.stream);
  if (t.stream !== undefined) throw new TopicError(`only data topics have a stream`);
  if (t.kind === 'commands') {
    if (t.command === undefined) throw new TopicError('a commands topic needs a command name');
    return commandsTopic(t.namespace, t.device, t.command);
  }
  if (t.command !== undefined) throw new TopicError('only commands topics have a command name');
  return t.kind === 'state'
    ? stateTopic(t.namespace, t.device)
    : eventsTopic(t.namespace, t.device);
}

function levels(text: string, what: string): string[] {
  if (text.length === 0) throw new TopicError(`empty ${what}`);
  if (Buffer.byteLength(text) > MAX_TOPIC_BYTES) {
    throw new TopicError(`${what} longer than ${MAX_TOPIC_BYTES} bytes`);
  }
  if (text.includes('\u0000')) throw new TopicError(`${what} contains NUL`);
  const parts = text.split('/');
  if (parts[0] !== 'edgebridge' || parts[1] !== 'v1') {
    throw new TopicError(
      `${what} ${JSON.stringify(text.slice(0, 64))} is not under ${TOPIC_ROOT}/`,
    );
  }
  return parts;
}

/** Parses a topic a message is published on; throws a TopicError unless it is a device topic. */
export function parseTopic(topic: string): DeviceTopic {
  const [, , namespace = '', device = '', kind = '', stream, ...rest] = levels(topic, 'topic');
  check(namespace, NAMESPACE, 'namespace');
  check(device, DEVICE, 'device name');
  if (kind === 'commands' && stream !== undefined) {
    return {
      namespace,
      device,
      kind,
      command: check([stream, ...rest].join('/'), COMMAND, 'command name'),
    };
  }
  if (kind === 'commands') throw new TopicError('a commands topic needs a command name');
  if (rest.length > 0) throw new TopicError(`topic has too many levels`);
  if (kind === 'data') {
    if (stream === undefined) return { namespace, device, kind };
    return { namespace, device, kind, stream: check(stream, STREAM, 'stream name') };
  }
  if ((kind === 'state' || kind === 'events') && stream === undefined) {
    return { namespace, device, kind };
  }
  throw new TopicError(
    `topic level ${JSON.stringify(kind.slice(0, 64))} is not data, state, events or commands`,
  );
}

/** parseTopic for a topic that need not be a device topic: undefined instead of a TopicError. */
export function tryParseTopic(topic: string): DeviceTopic | undefined {
  try {
    return parseTopic(topic);
  } catch (err) {
    if (err instanceof TopicError) return undefined;
    throw err;
  }
}

/**
 * Parses a subscription filter. The namespace must be named; the device may
 * be a wildcard (a client then needs rights to every device of the
 * namespace); levels after the device follow MQTT's wildcard rules.
 */
export function parseFilter(filter: string): DeviceFilter {
  const parts = levels(filter, 'topic filter');
  parts.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== parts.length - 1)) {
      throw new TopicError(`'#' must be a whole level at the end of a filter`);
    }
    if (level.includes('+') && level !== '+') throw new TopicError(`'+' must be a whole level`);
  });
  const [, , namespace = '', device = '', kind, ...rest] = parts;
  if (namespace === '+' || namespace === '#') {
    throw new TopicError('a filter must name its namespace (no wildcard there)');
  }
  check(namespace, NAMESPACE, 'namespace');
  if (device === '#' || device === '+') return { namespace, device: undefined };
  check(device, DEVICE, 'device name');
  if (kind === undefined || kind === '#' || kind === '+') return { namespace, device };
  if (!(TOPIC_KINDS as readonly string[]).includes(kind)) {
    throw new TopicError(
      `topic level ${JSON.stringify(kind.slice(0, 64))} is not data, state, events or commands`,
    );
  }
  if (kind === 'commands') {
    if (rest.length > 8) throw new TopicError(`filter has too many levels`);
    for (const level of rest)
      if (level !== '+' && level !== '#') check(level, STREAM, 'command name');
    return { namespace, device };
  }
  if (rest.length > 1 || (rest.length === 1 && kind !== 'data')) {
    throw new TopicError(`filter has too many levels`);
  }
  const [stream] = rest;
  if (stream !== undefined && stream !== '+' && stream !== '#')
    check(stream, STREAM, 'stream name');
  return { namespace, device };
}

/** Whether `topic` matches the MQTT filter `filter` (+ one level, # the rest, including none). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  // [MQTT-4.7.2-1]: wildcards at the first level do not match $-topics.
  if (t[0]?.startsWith('$') === true && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
