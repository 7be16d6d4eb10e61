// Attacks on the embedded node broker's connection count: idle authenticated
// clients and sockets that never send CONNECT must not take the agent's
// memory; past --broker-max-connections a client is told so (CONNACK 3), once
// per peer in the log, and the broker serves again once sockets go.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import type { AgentProcess } from '../harness/agent.ts';
import { brokerAgent } from '../harness/broker-agent.ts';
import { waitFor } from '../harness/mqtt-peers.ts';
import { connectPacket, firstAnswer, openSocket } from '../harness/raw-mqtt.ts';

const NODE = `connections-${process.pid}`;
const MAX = 20;
const agents: AgentProcess[] = [];
const clients: MqttClient[] = [];
const sockets: Socket[] = [];

after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await Promise.all(agents.map((a) => a.stop()));
});

const alice = { username: 'alice', password: 'alice-pw' };

/** The CONNACK return code alice gets for a new client id, or 'closed' if none came. */
async function aliceConnack(url: string, clientId: string): Promise<number | 'closed'> {
  const answer = await firstAnswer(url, connectPacket({ clientId, clean: true, ...alice }));
  return answer === 'closed' ? 'closed' : ((answer as { returnCode?: number }).returnCode ?? -1);
}

describe('the node broker caps its connections', () => {
  it('past --broker-max-connections, idle clients and silent sockets included, a client gets CONNACK 3', async () => {
    const a = await brokerAgent(NODE, [{ name: 'alice', password: 'alice-pw', namespace: 'lab' }], {
      extraArgs: ['--broker-max-connections', String(MAX)],
    }).start();
    agents.push(a);
    const url = a.brokerUrl ?? '';
    // Half the cap: authenticated clients that stay idle.
    for (let i = 0; i < MAX / 2; i++) {
      const c = await mqtt.connectAsync(url, {
        protocolVersion: 4,
        reconnectPeriod: 0,
        clientId: `idle-${i}`,
        ...alice,
      });
      c.on('error', () => undefined);
      clients.push(c);
    }
    // The other half: sockets that never send CONNECT.
    const silent: Socket[] = [];
    for (let i = 0; i < MAX / 2; i++) silent.push(await openSocket(url));
    sockets.push(...silent);

    assert.equal(await aliceConnack(url, 'one-too-many'), 3);
    // An MQTT 5 client is told in MQTT 5: reason 0x88 (server unavailable).
    await assert.rejects(
      mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, ...alice }),
      (err: { code?: unknown }) => {
        assert.equal(err.code, 0x88);
        return true;
      },
    );

    // A flood past the cap: no socket is served, each is answered 3 or closed, and the log
    // gets one line per interval, not one per socket.
    const started = Date.now();
    const flood = await Promise.all(
      Array.from({ length: 300 }, (_, i) => aliceConnack(url, `flood-${i}`)),
    );
    const intervals = Math.ceil((Date.now() - started) / 10_000);
    assert.deepEqual(
      flood.filter((code) => code !== 3 && code !== 'closed'),
      [],
      'a client past the cap was served',
    );
    assert.ok(flood.includes(3), 'no client past the cap was told why');
    assert.equal(
      await a.metric('edgebridge_broker_connections_refused_total', { reason: 'limit' }),
      302,
    );
    const lines = a
      .logLines()
      .filter((l) => typeof l.msg === 'string' && l.msg.includes('--broker-max-connections'));
    assert.ok(lines.length >= 1, 'the refusal was not logged');
    assert.ok(lines.length <= intervals + 1, `${lines.length} log lines for 302 refusals`);

    // Silent sockets are closed by the broker (no CONNECT in time), and then a client is served.
    await waitFor(
      'the broker to close the sockets that sent no CONNECT',
      () => silent.every((s) => s.closed),
      60_000,
    );
    assert.equal(await aliceConnack(url, 'after-timeout'), 0);
    assert.ok(
      (await a.metric('edgebridge_broker_client_errors_total', { kind: 'connect_timeout' })) >=
        MAX / 2,
    );
  });
});
