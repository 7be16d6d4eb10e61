// Sensor topics: what MQTT sensors publish on the node broker in their own
// conventions (homeassistant/..., homie/..., tele/..., spBv1.0/...), outside
// the device topics under edgebridge/. A principal may use them only as its
// sensor grant names them, by topic filters; device grants never reach them,
// and a sensor grant never reaches a device topic.
import { TOPIC_ROOT } from './topics.ts';

/** The sensor topics a principal may publish to (retained too: announcements are) and subscribe to (its commands). */
export interface SensorTopicGrant {
  publish: readonly string[];
  subscribe: readonly string[];
}

/** The first level of every device topic: sensor topics are everything else. */
const DEVICE_ROOT = TOPIC_ROOT.split('/')[0] ?? '';
const MAX_FILTER_BYTES = 1024;

/** Whether `topic` (a topic or a filter) is for a sensor grant to decide, not a device grant. */
export function isSensorTopic(topic: string): boolean {
  const slash = topic.indexOf('/');
  return (slash === -1 ? topic : topic.slice(0, slash)) !== DEVICE_ROOT;
}

/**
 * Why `filter` cannot be a sensor topic filter, or undefined if it can: MQTT
 * filter syntax, and a first level that is named (a wildcard there would match
 * device topics too), not `$` (the broker's own) and not the device root.
 */
export function sensorFilterProblem(filter: string): string | undefined {
  if (filter === '') return 'is empty';
  if (Buffer.byteLength(filter) > MAX_FILTER_BYTES)
    return `is longer than ${MAX_FILTER_BYTES} bytes`;
  if (filter.includes('\u0000')) return 'contains NUL';
  const levels = filter.split('/');
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1))
      return "has a '#' that is not a whole last level";
    if (level.includes('+') && level !== '+') return "has a '+' that is not a whole level";
  }
  const first = levels[0] ?? '';
  if (first === '#' || first === '+')
    return 'must name its first level (a wildcard there would match device topics too)';
  if (first.startsWith('$')) return "must not start with '$' (the broker's own topics)";
  if (first === DEVICE_ROOT)
    return `is under ${DEVICE_ROOT}/, where device grants decide (see devices)`;
  return undefined;
}

/** Whether every topic `filter` matches is also matched by `grant` (both valid filters). */
export function filterCovers(grant: string, filter: string): boolean {
  const g = grant.split('/');
  const f = filter.split('/');
  for (let i = 0; i < g.length; i++) {
    if (g[i] === '#') return true;
    if (i >= f.length || f[i] === '#') return false;
    if (g[i] !== '+' && (f[i] === '+' || g[i] !== f[i])) return false;
  }
  return f.length === g.length;
}
