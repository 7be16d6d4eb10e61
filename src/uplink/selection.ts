// Which node-broker topics go up to the cloud, with what priority and
// time-to-live: the agent's configured topic filters first, then, for device
// data topics, the uplink settings of the device's Discovery.
import type { DeviceDirectory, UplinkSpec } from './device-directory.ts';
import { topicMatches, tryParseTopic } from '../dataplane/topics.ts';

/** How a selected message travels: its FIFO key, priority and time-to-live. */
export interface UplinkRoute {
  /** Messages with one key stay in order: `<namespace>/<device>` for device topics, else the topic. */
  key: string;
  priority: number;
  ttlSeconds: number | undefined;
}

/** A configured rule: topics matching `filter` go up. */
export interface TopicRule {
  filter: string;
  priority?: number;
  ttlSeconds?: number;
}

export interface UplinkSelection {
  /** The route for `topic`, or undefined when it does not go up. A promise only when it must look something up. */
  select(topic: string): UplinkRoute | undefined | Promise<UplinkRoute | undefined>;
}

/** A selection from configured rules and, when given, the Discoveries of devices (`spec.uplink`). */
export function createSelection(opts: {
  rules: readonly TopicRule[];
  directory?: DeviceDirectory;
}): UplinkSelection {
  const { rules, directory } = opts;
  const route = (key: string, spec: UplinkSpec | TopicRule): UplinkRoute => ({
    key,
    priority: spec.priority ?? 0,
    ttlSeconds: spec.ttlSeconds,
  });
  return {
    select(topic) {
      const device = tryParseTopic(topic);
      const key = device !== undefined ? `${device.namespace}/${device.device}` : topic;
      for (const rule of rules) if (topicMatches(rule.filter, topic)) return route(key, rule);
      if (directory === undefined || device?.kind !== 'data') return undefined;
      const spec = directory.uplinkOf(device.namespace, device.device);
      const decide = (s: UplinkSpec | undefined): UplinkRoute | undefined =>
        s?.enabled === true ? route(key, s) : undefined;
      return spec instanceof Promise ? spec.then(decide) : decide(spec);
    },
  };
}
