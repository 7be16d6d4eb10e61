import { setTimeout as sleep } from 'node:timers/promises';
import { connect, MqttClient, type IClientOptions } from 'mqtt';
import { LogLimiter } from '../../src/util/log-limiter.ts';
import { urlForLog } from '../../src/util/url-for-log.ts';
import type { DiscoveredDevice, DiscoveryHandler, HandlerContext } from '../handler.ts';
import { Wakeup } from '../wakeup.ts';
import { ConventionPayloadError, type Convention } from './convention.ts';
import { createConvention, DEFAULT_PREFIXES } from './conventions/index.ts';
import { parseMqttDetails, type MqttDetails } from './details.ts';
import { SensorTable } from './sensor-table.ts';
import { SubscriptionSet } from './subscription-set.ts';
import { PatternSource } from './topic-pattern.ts';

/** The first list waits for the retained announcements: until QUIET_MS pass without one, at most MAX_SETTLE_MS. */
const QUIET_MS = 200;
const MAX_SETTLE_MS = 3000;
/** A burst of announcements makes one list, not one per message. */
const BATCH_MS = 50;
/**
 * Lists wait at least this many times as long as the last one took to make
 * and take in (the agent checks and compares every device of each): with
 * thousands of sensors announcing at once, lists then take at most a third of
 * the agent's time, not all of it, and readings keep flowing.
 */
const LIST_COST_FACTOR = 2;
const RECONNECT_MS = 1000;
const CONNECT_TIMEOUT_MS = 10_000;

/** A convention, or the patterns: what turns sensor messages into updates. */
export type Source = Pick<Convention, 'filters' | 'handle' | 'command'> & { readonly name: string };

export class NoSensorBrokerError extends Error {
  readonly code = 'EDGEBRIDGE_MQTT_NO_BROKER';
  constructor() {
    super('details.brokerUrl is not set and this agent has no node broker to default to');
    this.name = 'NoSensorBrokerError';
  }
}

/**
 * Sensors that announce themselves on an MQTT broker (Home Assistant
 * discovery and the other conventions, or plain topic patterns). Not shared:
 * the usual broker is the node's own, which only this node's agent sees, and
 * even a site broker that several nodes reach would make every node report
 * and republish the same sensors; each node's agent reports what its broker
 * carries, named per node.
 */
export const mqttHandler: DiscoveryHandler<MqttDetails> = {
  name: 'mqtt',
  shared: false,
  validate: parseMqttDetails,
  discover,
};

function sourcesFor(details: MqttDetails): Source[] {
  const sources: Source[] = details.conventions.flatMap((name) => {
    const convention = createConvention(name, {
      prefix: details.prefixes[name] ?? DEFAULT_PREFIXES[name],
      maxDevices: details.maxDevices,
    });
    return convention === undefined ? [] : [convention];
  });
  if (details.patterns.length > 0)
    sources.push(new PatternSource(details.patterns, details.maxDevices));
  return sources;
}

function clientOptions(secrets: Record<string, string>): IClientOptions {
  const options: IClientOptions = {
    clientId: `edgebridge-mqtt-${Math.random().toString(16).slice(2, 10)}`,
    clean: true,
    reconnectPeriod: RECONNECT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Subscriptions are made again on every (re)connect; retained announcements then come again.
    resubscribe: true,
  };
  if (secrets.MQTT_USERNAME !== undefined) options.username = secrets.MQTT_USERNAME;
  if (secrets.MQTT_PASSWORD !== undefined) options.password = secrets.MQTT_PASSWORD;
  if (secrets.MQTT_CA_CERT !== undefined) options.ca = secrets.MQTT_CA_CERT;
  return options;
}

async function* discover(
  details: MqttDetails,
  ctx: HandlerContext,
): AsyncGenerator<DiscoveredDevice[]> {
  const url = details.brokerUrl ?? ctx.publish.brokerUrl;
  if (url === undefined) throw new NoSensorBrokerError();
  // The embedded node broker is reached in-process, as the agent, which may read the sensors' topics.
  const inProcess = details.brokerUrl === undefined ? ctx.publish.sensorConnection : undefined;
  const sources = sourcesFor(details);
  const limiter = new LogLimiter({ perKind: 20 });
  const wakeup = new Wakeup();
  const table = new SensorTable({
    brokerUrl: urlForLog(url),
    maxDevices: details.maxDevices,
    publish: ctx.publish,
    onLimit: (source) =>
      limiter.log(
        ctx.log,
        'warn',
        'cap',
        source,
        { maxDevices: details.maxDevices },
        'device cap reached; further sensors ignored',
      ),
    send: (topic, payload) => {
      limiter.log(
        ctx.log,
        'info',
        'send',
        topic.slice(0, 256),
        { topic: topic.slice(0, 256) },
        'convention message sent to the sensor broker',
      );
      client.publish(topic, payload, { qos: 0 });
    },
  });
  const subscriptions = new SubscriptionSet(sources);
  let lastMessage = 0;
  let subscribed = false;

  const client: MqttClient =
    inProcess === undefined
      ? connect(url, clientOptions(ctx.secrets))
      : new MqttClient(() => inProcess(), clientOptions({}));
  const sync = (): void => {
    const { add, remove } = subscriptions.sync();
    if (add.length > 0)
      client.subscribe(add, { qos: 1 }, (err) => {
        if (err !== null && err !== undefined) {
          limiter.log(ctx.log, 'warn', 'subscribe', '', { err: err.message }, 'subscribe failed');
          return;
        }
        // Retained announcements follow the SUBACK: the quiet period starts here.
        if (!subscribed) lastMessage = Date.now();
        subscribed = true;
        wakeup.notify();
      });
    if (remove.length > 0) client.unsubscribe(remove);
  };
  client.on('connect', () => {
    ctx.log.info({ broker: urlForLog(url) }, 'connected to the sensor broker');
    ctx.reportProblem?.(undefined);
  });
  client.on('error', (err) => {
    // mqtt.js reconnects by itself; a refused login is worth a line, not a crash.
    limiter.log(ctx.log, 'warn', 'broker', '', { err: err.message }, 'sensor broker error');
    ctx.reportProblem?.(`sensor broker ${urlForLog(url)}: ${err.message}`);
  });
  client.on('offline', () => {
    limiter.log(
      ctx.log,
      'warn',
      'broker',
      'offline',
      { broker: urlForLog(url) },
      'sensor broker unreachable; reconnecting (devices stay listed)',
    );
  });
  client.on('message', (topic, payload) => {
    lastMessage = Date.now();
    if (payload.length > details.maxPayloadBytes) {
      limiter.log(
        ctx.log,
        'warn',
        'payload',
        topic.slice(0, 256),
        { topic: topic.slice(0, 256), bytes: payload.length, max: details.maxPayloadBytes },
        'sensor message over the size cap ignored',
      );
      return;
    }
    for (const source of subscriptions.sourcesFor(topic)) {
      try {
        if (table.apply(source, source.handle(topic, payload))) subscriptions.touch();
      } catch (err) {
        const bad = err instanceof ConventionPayloadError;
        limiter.log(
          ctx.log,
          'warn',
          bad ? 'payload' : 'convention',
          topic.slice(0, 256),
          { convention: source.name, topic: topic.slice(0, 256), err: (err as Error).message },
          bad ? 'sensor message ignored' : 'convention failed on a message; ignored',
        );
      }
    }
    wakeup.notify();
  });
  sync();

  let stopCommands: (() => Promise<void>) | undefined;
  try {
    stopCommands = await ctx.publish.commands?.((deviceId, name, payload) => {
      const route = table.route(deviceId, name, payload);
      if (route === undefined) {
        limiter.log(
          ctx.log,
          'warn',
          'command',
          `${deviceId}\u0000${name}`,
          { deviceId, command: name },
          'command for an unknown device or command name dropped',
        );
        return;
      }
      client.publish(
        route.topic,
        route.payload ?? payload,
        { qos: 1, retain: route.retain ?? false },
        (err) => {
          if (err !== undefined && err !== null)
            limiter.log(
              ctx.log,
              'warn',
              'command',
              deviceId,
              { deviceId, command: name, err: err.message },
              'command not forwarded',
            );
        },
      );
      limiter.log(
        ctx.log,
        'info',
        'command-sent',
        `${deviceId}\u0000${name}`,
        { deviceId, command: name, topic: route.topic.slice(0, 256) },
        'command forwarded to the sensor',
      );
    });

    const start = Date.now();
    let first = true;
    let listed = -1;
    let listCostMs = 0;
    while (!ctx.signal.aborted) {
      if (subscriptions.dirty) sync();
      const now = Date.now();
      const settled =
        !first ||
        (subscribed && now - lastMessage >= QUIET_MS) ||
        (subscribed && now - start >= MAX_SETTLE_MS);
      if (settled && (first || table.version !== listed)) {
        first = false;
        listed = table.version;
        const t = performance.now();
        yield table.devices();
        listCostMs = performance.now() - t;
        // The agent has marked new devices online; what their availability said since wins.
        table.listed();
        continue;
      }
      const wait = !settled && subscribed ? QUIET_MS : 60_000;
      await wakeup.wait(wait, ctx.signal);
      const batchMs = Math.max(BATCH_MS, LIST_COST_FACTOR * listCostMs);
      await sleep(batchMs, undefined, { signal: ctx.signal, ref: false }).catch(() => undefined);
    }
  } finally {
    await stopCommands?.().catch(() => undefined);
    await client.endAsync(true).catch(() => undefined);
  }
}
