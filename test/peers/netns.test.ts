import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { createNetwork, type Namespace, type Network } from '../harness/netns.ts';
import { requireProgram } from '../harness/processes.ts';
import { scratchDir } from '../harness/workdir.ts';

const fixture = path.join(import.meta.dirname, 'fixtures', 'multicast.ts');
const GROUP = '239.255.42.1';
const PORT = '45454';

/** The root namespace's links (without addresses/counters) and all its routes. */
function rootState(): string {
  const ip = requireProgram('/usr/sbin/ip');
  return (
    execFileSync(ip, ['-o', 'link', 'show'], { encoding: 'utf8' }).replace(/\s+link\/.*$/gm, '') +
    execFileSync(ip, ['route', 'show', 'table', 'all'], { encoding: 'utf8' })
  );
}

/** Starts a multicast receiver in `to`, sends from `from` until a datagram arrives, returns what arrived. */
async function multicast(from: Namespace, to: Namespace, message: string): Promise<unknown> {
  const receiver = to.spawn({
    name: `mcast-receiver-${to.role}`,
    command: process.execPath,
    args: [fixture, 'receive', GROUP, PORT, to.address],
    logDir: scratchDir('netns'),
  });
  try {
    const lines = (): unknown[] =>
      receiver
        .tail(100)
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as unknown);
    await receiver.waitUntil(
      'the receiver to join the group',
      () => (lines().length > 0 ? true : undefined),
      10000,
    );
    // Datagrams can be lost; send again until one arrives.
    return await receiver.waitUntil(
      `a multicast datagram from ${from.role}`,
      async () => {
        const got = lines().find((l) => typeof l === 'object' && l !== null && 'message' in l);
        if (got !== undefined) return got;
        await from.exec(process.execPath, [fixture, 'send', GROUP, PORT, from.address, message]);
        return undefined;
      },
      10000,
    );
  } finally {
    await receiver.stop();
  }
}

describe('network namespaces', () => {
  // Created by the first test (not in before()) so that a failure to create them
  // fails the tests instead of cancelling them.
  let rootBefore = '';
  let started: Promise<{ bridged: Network; paired: Network }> | undefined;
  const networks = (): Promise<{ bridged: Network; paired: Network }> =>
    (started ??= (async () => {
      rootBefore = rootState();
      const bridged = await createNetwork({ members: ['sender', 'receiver', 'bystander'] });
      try {
        return {
          bridged,
          paired: await createNetwork({ members: ['left', 'right'], topology: 'pair' }),
        };
      } catch (err) {
        await bridged.destroy();
        throw err;
      }
    })());

  after(async () => {
    const n = await started?.catch(() => undefined);
    await n?.bridged.destroy();
    await n?.paired.destroy();
  });

  it('gives each member an address and a multicast route on its own interface, and no way out', async () => {
    const { bridged } = await networks();
    const s = bridged.ns('sender');
    const { stdout } = await s.exec('ip', ['-o', '-4', 'addr', 'show', 'dev', s.ifname]);
    assert.match(stdout, new RegExp(`inet ${s.cidr.replaceAll('.', '\\.')} `));
    const routes = await s.exec('ip', ['route', 'show']);
    assert.match(routes.stdout, new RegExp(`^224\\.0\\.0\\.0/4 dev ${s.ifname}`, 'm'));
    assert.doesNotMatch(routes.stdout, /^default/m);
    const links = await s.exec('ip', ['-o', 'link', 'show']);
    assert.deepEqual(
      links.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':')[1]?.trim().split('@')[0]),
      ['lo', s.ifname],
    );
    assert.equal(new Set(bridged.members.map((m) => m.address)).size, 3);
  });

  it('carries a UDP multicast datagram from one namespace to another over the bridge', async () => {
    const { bridged } = await networks();
    const s = bridged.ns('sender');
    const got = await multicast(s, bridged.ns('receiver'), 'ping-over-bridge');
    assert.deepEqual(got, { message: 'ping-over-bridge', from: s.address });
  });

  it('carries a UDP multicast datagram over a direct veth pair', async () => {
    const { paired } = await networks();
    const left = paired.ns('left');
    const got = await multicast(left, paired.ns('right'), 'ping-over-pair');
    assert.deepEqual(got, { message: 'ping-over-pair', from: left.address });
  });

  it('leaves the root namespace links and routes unchanged, and destroy() removes every namespace', async () => {
    const { bridged, paired } = await networks();
    assert.equal(rootState(), rootBefore);
    for (const net of [bridged, paired]) {
      await net.destroy();
      await net.destroy(); // idempotent
      const list = execFileSync('/usr/sbin/ip', ['netns', 'list'], { encoding: 'utf8' });
      assert.ok(!list.includes(net.id), `namespaces of ${net.id} remain:\n${list}`);
    }
    assert.equal(rootState(), rootBefore);
  });
});
