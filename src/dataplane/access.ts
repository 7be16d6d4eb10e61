// Who may use which device's topics on the node broker. A principal holds
// grants; a grant names Devices of one namespace (by name, by labels, or all of
// them) and whether the principal may also publish to them. Nothing is allowed
// unless a grant says so.
import type { LabelSelector } from '../api/types.ts';
import { matchLabelSelector } from '../registry/selectors.ts';
import { TopicError } from './errors.ts';
import {
  filterCovers,
  isSensorTopic,
  sensorFilterProblem,
  type SensorTopicGrant,
} from './sensor-topics.ts';
import { parseFilter, parseTopic, topicMatches } from './topics.ts';

export interface DeviceGrant {
  namespace: string;
  /** Only these Device names; absent: any name. */
  names?: string[];
  /** Only Devices whose labels match; absent: any labels. */
  selector?: LabelSelector;
  /** Publish to the devices' data, events and commands topics (never state: that is the agent's). */
  publish: boolean;
}

/** An authenticated client of the node broker. */
export interface Principal {
  /** For logs and metrics: "user:NAME", "serviceaccount:NS/NAME" or "anonymous"; never a secret. */
  readonly name: string;
  readonly grants: readonly DeviceGrant[];
  /** Sensor topics outside edgebridge/ (a sensor's own convention); absent: none. */
  readonly sensorTopics?: SensorTopicGrant;
}

/** The labels of a Device; undefined if there is no such Device. */
export type DeviceLabels = (
  namespace: string,
  device: string,
) => Promise<Record<string, string> | undefined>;

export type Decision = { ok: true } | { ok: false; reason: string };

const ALLOWED: Decision = { ok: true };

/** Decides subscriptions and publishes against a principal's grants. */
export class AccessControl {
  readonly #labels: DeviceLabels;

  constructor(labels: DeviceLabels) {
    this.#labels = labels;
  }

  /** A filter whose device level is a wildcard needs a grant for every device of the namespace. */
  async canSubscribe(principal: Principal, filter: string): Promise<Decision> {
    if (isSensorTopic(filter)) return sensorSubscribe(principal, filter);
    let parsed;
    try {
      parsed = parseFilter(filter);
    } catch (err) {
      if (err instanceof TopicError) return { ok: false, reason: err.message };
      throw err;
    }
    const { namespace, device } = parsed;
    if (device === undefined) {
      return principal.grants.some((g) => g.namespace === namespace && coversAll(g))
        ? ALLOWED
        : { ok: false, reason: `no grant for every device in namespace ${namespace}` };
    }
    return (await this.#grantFor(principal, namespace, device, false)) !== undefined
      ? ALLOWED
      : { ok: false, reason: `no grant for device ${namespace}/${device}` };
  }

  /**
   * Clients may publish device data and events, not retained, and only with a
   * publish grant. Decided at once unless a grant's selector needs the Device's labels.
   */
  canPublish(principal: Principal, topic: string, retain: boolean): Decision | Promise<Decision> {
    if (isSensorTopic(topic)) return sensorPublish(principal, topic);
    let parsed;
    try {
      parsed = parseTopic(topic);
    } catch (err) {
      if (err instanceof TopicError) return { ok: false, reason: err.message };
      throw err;
    }
    if (parsed.kind === 'state') return { ok: false, reason: 'state topics are the agent’s own' };
    if (retain) return { ok: false, reason: 'clients may not publish retained messages' };
    const { namespace, device } = parsed;
    const decide = (grant: DeviceGrant | undefined): Decision =>
      grant !== undefined
        ? ALLOWED
        : { ok: false, reason: `no publish grant for device ${namespace}/${device}` };
    const grant = this.#grantFor(principal, namespace, device, true);
    return grant instanceof Promise ? grant.then(decide) : decide(grant);
  }

  /** The grant that covers the device; a Promise only when labels must be looked up. */
  #grantFor(
    principal: Principal,
    namespace: string,
    device: string,
    publish: boolean,
  ): DeviceGrant | undefined | Promise<DeviceGrant | undefined> {
    let candidates: DeviceGrant[] | undefined;
    for (const g of principal.grants) {
      if (
        g.namespace !== namespace ||
        (publish && !g.publish) ||
        (g.names !== undefined && !g.names.includes(device))
      ) {
        continue;
      }
      if (g.selector === undefined) return g;
      (candidates ??= []).push(g);
    }
    if (candidates === undefined) return undefined;
    const withSelectors = candidates;
    // Labels are looked up only when a selector needs them; an unknown Device matches no selector.
    return this.#labels(namespace, device).then((labels) =>
      labels === undefined
        ? undefined
        : withSelectors.find((g) => matchLabelSelector(g.selector, labels)),
    );
  }
}

/** A subscription outside edgebridge/: only within a sensor grant's subscribe filters. */
function sensorSubscribe(principal: Principal, filter: string): Decision {
  const problem = sensorFilterProblem(filter);
  if (problem !== undefined) return { ok: false, reason: `topic filter ${problem}` };
  return principal.sensorTopics?.subscribe.some((g) => filterCovers(g, filter)) === true
    ? ALLOWED
    : { ok: false, reason: 'no sensor grant to subscribe to this topic filter' };
}

/** A publish outside edgebridge/ (retained too: sensors' announcements are): only within a sensor grant's publish filters. */
function sensorPublish(principal: Principal, topic: string): Decision {
  if (/[+#]/.test(topic) || topic.includes('\u0000'))
    return { ok: false, reason: 'a topic has no wildcards or NUL' };
  return principal.sensorTopics?.publish.some((g) => topicMatches(g, topic)) === true
    ? ALLOWED
    : { ok: false, reason: 'no sensor grant to publish to this topic' };
}

function coversAll(g: DeviceGrant): boolean {
  return g.names === undefined && g.selector === undefined;
}
