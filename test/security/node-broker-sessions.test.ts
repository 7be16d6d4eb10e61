// Attacks on MQTT sessions of the embedded node broker: a client that knows
// another user's client id must get neither that user's session (its queued
// messages, of devices it was never granted) nor its connection; the owner
// keeps both, and may take its own session over as MQTT requires.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { AgentProcess } from '../harness/agent.ts';
import { brokerAgent } from '../harness/broker-agent.ts';
import { eventually } from '../harness/devices.ts';
import { lazy } from '../harness/lazy.ts';
import { waitFor } from '../harness/mqtt-peers.ts';
import { connectPacket, firstAnswer } from '../harness/raw-mqtt.ts';

const NODE = `sessions-${process.pid}`;
const TOPIC = 'edgebridge/v1/lab/cam/data';
const USERS = [
  { name: 'alice', password: 'alice-pw', namespace: 'lab' },
  { name: 'mallory', password: 'mallory-pw', namespace: 'elsewhere' },
  { name: 'ops', password: 'ops-pw', namespace: 'lab', publish: true },
];
const agents: AgentProcess[] = [];
const clients: MqttClient[] = [];

after(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await Promise.all(agents.map((a) => a.stop()));
});

const setup = brokerAgent(NODE, USERS);
const agent = lazy(async () => {
  const a = await setup.start();
  agents.push(a);
  return a;
});

interface Session {
  client: MqttClient;
  sessionPresent: boolean;
  /** Payloads received, in order. */
  received: string[];
  closed: () => boolean;
}

/** MQTT 5 sessions that are not clean are kept this long (seconds) after their connection. */
const V5_EXPIRY = 300;

/**
 * An MQTT 3.1.1 (or 5) client of `user` without reconnects; rejects with the
 * CONNACK return code as `code`. In MQTT 5 a session that is not clean asks
 * to be kept for V5_EXPIRY.
 */
async function connectAs(
  url: string,
  user: string,
  options: IClientOptions & { clientId: string; clean: boolean },
  version: 4 | 5 = 4,
): Promise<Session> {
  const client = mqtt.connect(url, {
    protocolVersion: version,
    reconnectPeriod: 0,
    username: user,
    password: `${user}-pw`,
    ...(version === 5 && !options.clean
      ? { properties: { sessionExpiryInterval: V5_EXPIRY } }
      : {}),
    ...options,
  });
  clients.push(client);
  const received: string[] = [];
  let closed = false;
  client.on('message', (_topic, payload) => received.push(payload.toString()));
  client.on('close', () => (closed = true));
  const sessionPresent = await new Promise<boolean>((resolve, reject) => {
    client.once('connect', (connack) => resolve(connack.sessionPresent));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  client.on('error', () => undefined);
  return { client, sessionPresent, received, closed: () => closed };
}

/** The CONNACK return code of a refused connection. */
async function refusalOf(
  url: string,
  user: string,
  options: { clientId: string; clean: boolean },
  version: 4 | 5 = 4,
): Promise<number> {
  try {
    const s = await connectAs(url, user, options, version);
    await s.client.endAsync(true);
  } catch (err) {
    return Number((err as { code?: unknown }).code);
  }
  return assert.fail(`${user} was given client id ${options.clientId}`);
}

/** Publishes `payloads` on the device topic with QoS 1, as ops. */
async function publish(url: string, payloads: string[]): Promise<void> {
  const ops = await connectAs(url, 'ops', { clientId: `ops-${Math.random()}`, clean: true });
  for (const p of payloads) await ops.client.publishAsync(TOPIC, p, { qos: 1 });
  await ops.client.endAsync();
}

/** Whether ops's message `marker` reaches `session` (it is subscribed). */
async function stillReceives(url: string, session: Session, marker: string): Promise<void> {
  await publish(url, [marker]);
  await waitFor(`${marker} to reach the client`, () => session.received.includes(marker), 30_000);
  assert.equal(session.closed(), false);
}

for (const version of [4, 5] as const) {
  const v5 = version === 5;
  /** CONNACK for a client id held by another principal: 2 (identifier rejected), 0x85 in MQTT 5. */
  const idRefused = v5 ? 0x85 : 2;
  describe(`MQTT ${v5 ? '5' : '3.1.1'} sessions on the node broker belong to the user that made them`, () => {
    it('a connected client id is refused to another user, with a clean session or without', async () => {
      const url = (await agent()).brokerUrl ?? '';
      const alice = await connectAs(
        url,
        'alice',
        { clientId: `alice-live-v${version}`, clean: false },
        version,
      );
      await alice.client.subscribeAsync(TOPIC, { qos: 1 });
      assert.equal(
        await refusalOf(
          url,
          'mallory',
          { clientId: `alice-live-v${version}`, clean: false },
          version,
        ),
        idRefused,
      );
      assert.equal(
        await refusalOf(
          url,
          'mallory',
          { clientId: `alice-live-v${version}`, clean: true },
          version,
        ),
        idRefused,
      );
      // Alice was not disconnected and is still served.
      await stillReceives(url, alice, 'after-attack-live');
      await alice.client.endAsync();
    });

    it('a stored session is refused to another user, and kept for its owner with its queued messages', async () => {
      const a = await agent();
      const url = a.brokerUrl ?? '';
      const refusals = () =>
        a.metric('edgebridge_broker_auth_failures_total', { reason: 'client_id_in_use' });
      const before = await refusals();
      const alice = await connectAs(
        url,
        'alice',
        { clientId: `alice-stored-v${version}`, clean: false },
        version,
      );
      await alice.client.subscribeAsync(TOPIC, { qos: 1 });
      await alice.client.endAsync();
      await publish(url, ['queued-1', 'queued-2']);
      // With the session, mallory would get CONNACK session-present and alice's queued messages.
      assert.equal(
        await refusalOf(
          url,
          'mallory',
          { clientId: `alice-stored-v${version}`, clean: false },
          version,
        ),
        idRefused,
      );
      // A clean session would have wiped alice's session.
      assert.equal(
        await refusalOf(
          url,
          'mallory',
          { clientId: `alice-stored-v${version}`, clean: true },
          version,
        ),
        idRefused,
      );
      const back = await connectAs(
        url,
        'alice',
        { clientId: `alice-stored-v${version}`, clean: false },
        version,
      );
      assert.equal(back.sessionPresent, true);
      await waitFor('the queued messages', () => back.received.length >= 2, 30_000);
      assert.deepEqual(back.received.slice(0, 2), ['queued-1', 'queued-2']);
      await back.client.endAsync();
      const lines = a
        .logLines()
        .filter((l) => l.msg === 'client refused: the client id is held by another principal');
      assert.ok(lines.length >= 1, 'the refusal was not logged');
      assert.equal(await refusals(), before + 2);
    });

    it('the same user takes its own session over, as MQTT requires', async () => {
      const url = (await agent()).brokerUrl ?? '';
      const first = await connectAs(
        url,
        'alice',
        { clientId: `alice-twice-v${version}`, clean: false },
        version,
      );
      await first.client.subscribeAsync(TOPIC, { qos: 1 });
      const second = await connectAs(
        url,
        'alice',
        { clientId: `alice-twice-v${version}`, clean: false },
        version,
      );
      assert.equal(second.sessionPresent, true);
      await waitFor('the first connection to be closed', first.closed, 30_000);
      await stillReceives(url, second, 'after-takeover');
      await second.client.endAsync();
    });

    it('the client id of a clean session is free once its connection has ended', async () => {
      const url = (await agent()).brokerUrl ?? '';
      const alice = await connectAs(
        url,
        'alice',
        { clientId: `alice-clean-v${version}`, clean: true },
        version,
      );
      await alice.client.endAsync();
      const mallory = await connectAs(
        url,
        'mallory',
        { clientId: `alice-clean-v${version}`, clean: false },
        version,
      );
      assert.equal(mallory.sessionPresent, false);
      await mallory.client.endAsync();
    });

    it('refusals are logged once per kind and peer per interval, however fast an attacker retries', async () => {
      const a = await agent();
      const url = a.brokerUrl ?? '';
      const alice = await connectAs(
        url,
        'alice',
        { clientId: `alice-flood-v${version}`, clean: true },
        version,
      );
      const before = await a.metric('edgebridge_broker_auth_failures_total', {
        reason: 'client_id_in_use',
      });
      const linesBefore = a
        .logLines()
        .filter(
          (l) => l.msg === 'client refused: the client id is held by another principal',
        ).length;
      const started = Date.now();
      const attempts = 200;
      for (let i = 0; i < attempts; i++)
        assert.equal(
          await refusalOf(
            url,
            'mallory',
            { clientId: `alice-flood-v${version}`, clean: true },
            version,
          ),
          idRefused,
        );
      const elapsedIntervals = Math.ceil((Date.now() - started) / 10_000);
      assert.equal(
        await a.metric('edgebridge_broker_auth_failures_total', { reason: 'client_id_in_use' }),
        before + attempts,
      );
      const lines = a
        .logLines()
        .filter((l) => l.msg === 'client refused: the client id is held by another principal');
      // One line per 10 s interval for this kind and peer (and at most one left from the tests before).
      assert.ok(
        lines.length - linesBefore <= elapsedIntervals + 1,
        `${lines.length} refusal lines for ${attempts} attempts`,
      );
      await alice.client.endAsync();
    });
  });
}

describe('MQTT 5 session expiry on the node broker', () => {
  it('a kept session holds its client id for its expiry interval, and no longer', async () => {
    const url = (await agent()).brokerUrl ?? '';
    const id = 'alice-expiring';
    const alice = await connectAs(
      url,
      'alice',
      { clientId: id, clean: false, properties: { sessionExpiryInterval: 1 } },
      5,
    );
    await alice.client.subscribeAsync(TOPIC, { qos: 1 });
    await alice.client.endAsync();
    assert.equal(await refusalOf(url, 'mallory', { clientId: id, clean: false }, 5), 0x85);
    // Past the session's expiry (a second), the id is free and nothing of alice's comes with it.
    await new Promise((r) => setTimeout(r, 2500));
    const mallory = await connectAs(url, 'mallory', { clientId: id, clean: false }, 5);
    assert.equal(mallory.sessionPresent, false);
    await mallory.client.subscribeAsync('edgebridge/v1/elsewhere/x/data', { qos: 1 });
    assert.deepEqual(mallory.received, []);
    await mallory.client.endAsync();
  });
});

describe('an empty client id on the node broker', () => {
  it('is refused without a clean session (CONNACK 2, MQTT-3.1.3-8), and accepted with one', async () => {
    const url = (await agent()).brokerUrl ?? '';
    const user = { username: 'alice', password: 'alice-pw' };
    const unclean = await firstAnswer(url, connectPacket({ clientId: '', clean: false, ...user }));
    assert.equal(unclean === 'closed' ? 'closed' : unclean.cmd, 'connack');
    assert.equal((unclean as { returnCode?: number }).returnCode, 2);
    const clean = await firstAnswer(url, connectPacket({ clientId: '', clean: true, ...user }));
    assert.equal((clean as { returnCode?: number }).returnCode, 0);
  });
});

describe('sessions across an agent restart', () => {
  it('the embedded broker keeps sessions in memory: after a restart nobody gets the old one', async () => {
    const node = `${NODE}-restart`;
    const restartable = brokerAgent(node, USERS);
    let a = await restartable.start();
    agents.push(a);
    const url1 = a.brokerUrl ?? '';
    const alice = await connectAs(url1, 'alice', { clientId: 'alice-restart', clean: false });
    await alice.client.subscribeAsync(TOPIC, { qos: 1 });
    await alice.client.endAsync();
    await publish(url1, ['before-restart']);
    await a.stop();
    a = await restartable.start();
    agents.push(a);
    const url2 = a.brokerUrl ?? '';
    // If sessions ever persist, their owners must persist with them: this must not turn true.
    const mallory = await connectAs(url2, 'mallory', { clientId: 'alice-restart', clean: false });
    assert.equal(mallory.sessionPresent, false);
    // Queued messages come right after CONNACK; a SUBACK after them means none came.
    await mallory.client.subscribeAsync('edgebridge/v1/elsewhere/x/data', { qos: 1 });
    assert.deepEqual(mallory.received, []);
    await mallory.client.endAsync();
  });
});

describe('stored sessions on the node broker are bounded', () => {
  it('past --broker-max-connections a session is ended with its queued messages, its id freed; a flood ends its own', async () => {
    const max = 3;
    const a = await brokerAgent(`${NODE}-bounded`, USERS, {
      extraArgs: ['--broker-max-connections', String(max)],
    }).start();
    agents.push(a);
    const url = a.brokerUrl ?? '';
    const keep = async (user: string, id: string): Promise<void> => {
      const s = await connectAs(url, user, { clientId: id, clean: false });
      if (user === 'alice') await s.client.subscribeAsync(TOPIC, { qos: 1 });
      await s.client.endAsync();
    };
    const ended = (n: number): Promise<true> =>
      eventually(
        `${n} sessions to be ended`,
        async () =>
          (await a.metric('edgebridge_broker_sessions_ended_total')) >= n ? true : undefined,
        30_000,
      );
    for (const id of ['kept-1', 'kept-2', 'kept-3']) await keep('alice', id);
    await publish(url, ['queued-for-alice']);
    // A fourth: alice keeps the most, so her least recently used, kept-1, is ended, queued message and all.
    await keep('alice', 'kept-4');
    await ended(1);
    const mallory = await connectAs(url, 'mallory', { clientId: 'kept-1', clean: false });
    assert.equal(mallory.sessionPresent, false);
    // Queued messages come right after CONNACK; a SUBACK after them means none came.
    await mallory.client.subscribeAsync('edgebridge/v1/elsewhere/x/data', { qos: 1 });
    assert.deepEqual(mallory.received, []);
    await mallory.client.endAsync();
    await ended(2); // mallory's kept-1 made four again: alice's kept-2 went
    // Mallory's flood of sessions ends mallory's own, not alice's kept-3 and kept-4.
    for (let i = 0; i < 5; i++) await keep('mallory', `flood-${i}`);
    await ended(7);
    for (const id of ['kept-3', 'kept-4'])
      assert.equal(await refusalOf(url, 'mallory', { clientId: id, clean: false }), 2);
    const back = await connectAs(url, 'alice', { clientId: 'kept-3', clean: false });
    assert.equal(back.sessionPresent, true);
    await waitFor('the queued message', () => back.received.includes('queued-for-alice'), 30_000);
    await back.client.endAsync();
    assert.equal(await a.metric('edgebridge_broker_sessions_ended_total'), 7);
  });
});
