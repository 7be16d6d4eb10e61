import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { startAvahi, type Avahi, type PublishedService } from '../harness/avahi.ts';
import { createNetwork, type Network } from '../harness/netns.ts';
import type { PeerProcess } from '../harness/processes.ts';
import { scratchDir } from '../harness/workdir.ts';
import { spawnStandaloneAgent, standaloneDevices } from './fixtures/standalone-agent.ts';

// The mdns handler against avahi-daemon: avahi in one namespace, the handler
// (the run-handler fixture, `edgebridge scan`, or an agent) in another, and a
// fuzzer in a third, all on one bridge. The handler is always given the
// namespace's interface: it never queries this machine's real interfaces.

const root = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(root, 'src/cli/main.ts');
const RUNNER = path.join(import.meta.dirname, 'fixtures', 'run-handler.ts');
const FUZZER = path.join(import.meta.dirname, 'fixtures', 'mdns-fuzzer.ts');

interface Item {
  id: string;
  properties: Record<string, string>;
}

describe('the mdns handler against avahi', () => {
  let started: Promise<{ net: Network; avahi: Avahi }> | undefined;
  const peers = (): Promise<{ net: Network; avahi: Avahi }> =>
    (started ??= (async () => {
      const net = await createNetwork({ members: ['avahi', 'agent', 'fuzzer'] });
      try {
        return { net, avahi: await startAvahi({ ns: net.ns('avahi') }) };
      } catch (err) {
        await net.destroy();
        throw err;
      }
    })());
  const runners: PeerProcess[] = [];
  const services: PublishedService[] = [];
  after(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await Promise.all(services.map((s) => s.unpublish()));
    const p = await started?.catch(() => undefined);
    await p?.avahi.stop();
    await p?.net.destroy();
  });

  const publish = async (
    name: string,
    txt: Record<string, string>,
    type = '_http._tcp',
  ): Promise<PublishedService> => {
    const { avahi } = await peers();
    const s = await avahi.publishService({ name, type, port: 8080, txt });
    services.push(s);
    return s;
  };

  let runnerCount = 0;
  /** The handler running in the agent namespace with `details`; lists() reads what it printed. */
  const startRunner = async (details: object) => {
    const { net } = await peers();
    const agent = net.ns('agent');
    const p = agent.spawn({
      name: `mdns-runner-${++runnerCount}`,
      command: process.execPath,
      args: [RUNNER, 'mdns', JSON.stringify({ interfaces: [agent.ifname], ...details }), '5'],
      logDir: scratchDir('mdns-handler'),
    });
    runners.push(p);
    const lists = (): Item[][] =>
      p
        .tail(100_000)
        .split('\n')
        .filter((l) => l.startsWith('{"items"'))
        .flatMap((l) => {
          try {
            return [(JSON.parse(l) as { items: Item[] }).items];
          } catch {
            return []; // the last line, still being written
          }
        });
    const logs = (): { msg: string; level: number }[] =>
      p
        .tail(100_000)
        .split('\n')
        .filter((l) => l.startsWith('{"level"'))
        .map((l) => JSON.parse(l) as { msg: string; level: number });
    const waitFor = (what: string, ok: (items: Item[]) => boolean, timeoutMs = 20_000) =>
      p.waitUntil(what, () => lists().find(ok), timeoutMs);
    return { process: p, lists, logs, waitFor };
  };
  const ids = (items: Item[]): string[] => items.map((i) => i.id).sort();

  it('lists a published service with its properties, follows a TXT change, and drops it when withdrawn', async () => {
    const { net } = await peers();
    const runner = await startRunner({ serviceTypes: ['_http._tcp'] });
    const cam = await publish('Edge Cam 1', { path: '/stream', 'model-name': 'eb-test' });
    const [item] = (
      await runner.waitFor('the camera', (l) =>
        l.some((i) => i.id === 'Edge Cam 1._http._tcp.local'),
      )
    ).filter((i) => i.id === 'Edge Cam 1._http._tcp.local');
    const { avahi } = await peers();
    assert.deepEqual(item?.properties, {
      MDNS_NAME: 'Edge Cam 1',
      MDNS_TYPE: '_http._tcp',
      MDNS_HOST: `${avahi.hostName}.local`,
      MDNS_PORT: '8080',
      MDNS_ADDRESSES: net.ns('avahi').address,
      MDNS_TXT_PATH: '/stream',
      MDNS_TXT_MODEL_NAME: 'eb-test',
    });

    // avahi-publish-service cannot change a TXT record in place: publish again with new TXT.
    await cam.unpublish();
    await publish('Edge Cam 1', { path: '/v2' });
    await runner.waitFor('the new TXT', (l) =>
      l.some(
        (i) =>
          i.id === 'Edge Cam 1._http._tcp.local' &&
          i.properties.MDNS_TXT_PATH === '/v2' &&
          i.properties.MDNS_TXT_MODEL_NAME === undefined,
      ),
    );
    await services.at(-1)?.unpublish();
    const last = runner.lists().length;
    await runner.process.waitUntil('the camera to be withdrawn', () =>
      runner
        .lists()
        .slice(last)
        .find((l) => !l.some((i) => i.id === 'Edge Cam 1._http._tcp.local')),
    );
  });

  it('selects by service type, name patterns and TXT values; browses every type when none is given', async () => {
    await publish('Edge Cam 2', { model: 'eb-1' });
    await publish('Edge Test 3', { model: 'eb-1' });
    await publish('Printer 4', { model: 'eb-1' });
    await publish('Edge Cam 5', { model: 'other' });
    await publish('Edge Cam 6', { model: 'eb-1' }, '_ipp._tcp');
    const all = [
      'Edge Cam 2._http._tcp.local',
      'Edge Cam 5._http._tcp.local',
      'Edge Cam 6._ipp._tcp.local',
      'Edge Test 3._http._tcp.local',
      'Printer 4._http._tcp.local',
    ];
    // mDNS has no end-of-answers signal, and avahi spreads its answers over a
    // second on a loaded machine: the first list may lack a late one. What must
    // hold is that each handler reaches exactly its selection and never lists
    // anything outside it on the way.
    const every = await startRunner({ nameFilter: { exclude: ['Edge Cam 1'] } });
    const http = await startRunner({
      serviceTypes: ['_http._tcp'],
      nameFilter: { exclude: ['Edge Cam 1'] },
    });
    const filtered = await startRunner({
      serviceTypes: ['_http._tcp', '_ipp._tcp'],
      nameFilter: { include: ['edge *'], exclude: ['*test*'] },
      txtFilter: { model: 'eb-*' },
    });
    const reaches = async (r: Awaited<ReturnType<typeof startRunner>>, expected: string[]) => {
      await r.waitFor(`exactly ${expected.join(', ')}`, (l) => isDeepStrictEqual(ids(l), expected));
      for (const l of r.lists()) {
        assert.deepEqual(
          ids(l).filter((id) => !expected.includes(id)),
          [],
          'a list outside the selection',
        );
      }
    };
    await reaches(every, all);
    await reaches(
      http,
      all.filter((id) => id.includes('._http.')),
    );
    await reaches(filtered, ['Edge Cam 2._http._tcp.local', 'Edge Cam 6._ipp._tcp.local']);
  });

  it('is what `edgebridge scan mdns` prints, in JSON', async () => {
    const { net } = await peers();
    await publish('Scan Me', { a: '1' }, '_scan._tcp');
    const agent = net.ns('agent');
    const { stdout } = await agent.exec(
      process.execPath,
      [
        CLI,
        'scan',
        'mdns',
        '--details',
        JSON.stringify({ interfaces: [agent.ifname], serviceTypes: ['_scan._tcp'] }),
        '-o',
        'json',
      ],
      { timeout: 30_000 },
    );
    const out = JSON.parse(stdout) as {
      items: (Item & { labels: object; deviceNodes: unknown[]; mounts: unknown[] })[];
    };
    assert.deepEqual(
      out.items.map((i) => i.id),
      ['Scan Me._scan._tcp.local'],
    );
    assert.equal(out.items[0]?.properties.MDNS_TXT_A, '1');
    assert.deepEqual(
      [out.items[0]?.labels, out.items[0]?.deviceNodes, out.items[0]?.mounts],
      [{}, [], []],
    );

    // A timeout shorter than the handler's first round (two queries, two seconds): an empty list, exit 0.
    const early = await agent.exec(
      process.execPath,
      [
        CLI,
        'scan',
        'mdns',
        '--details',
        JSON.stringify({ interfaces: [agent.ifname], serviceTypes: ['_scan._tcp'] }),
        '-o',
        'json',
        '--timeout',
        '0.2',
      ],
      { timeout: 30_000 },
    );
    assert.deepEqual(JSON.parse(early.stdout), { items: [] });
    assert.match(early.stderr, /no complete device list within the timeout/);
  });

  it('survives 10,000 mutated packets from one peer, logging about it at most once a minute, and still finds a real service', async () => {
    const { net } = await peers();
    const runner = await startRunner({
      serviceTypes: ['_http._tcp', '_fuzz._tcp'],
      maxInstances: 256,
    });
    await runner.process.waitUntil('a first list', () => runner.lists()[0]);
    const fuzzer = net.ns('fuzzer');
    const { stdout } = await fuzzer.exec(
      process.execPath,
      [FUZZER, net.ns('agent').address, '10000', '7'],
      { timeout: 120_000 },
    );
    assert.deepEqual(JSON.parse(stdout), { sent: 10_000, failed: 0 });
    await publish('After Fuzz', { ok: 'yes' }, '_fuzz._tcp');
    // The table is full of fuzzed instances: a new one gets a place once they have been
    // unheard of for 10 s, which a loaded machine may take a while to notice.
    await runner.waitFor(
      'a real service after the fuzzing',
      (l) =>
        l.some((i) => i.id === 'After Fuzz._fuzz._tcp.local' && i.properties.MDNS_TXT_OK === 'yes'),
      60_000,
    );
    assert.equal(runner.process.exited, false);
    const peerLines = runner.logs().filter((l) => /malformed|undecodable|instance cap/.test(l.msg));
    // One kind of line per peer (the fuzzer), undecodable packets (no peer known) and the cap.
    assert.ok(peerLines.length >= 1 && peerLines.length <= 3, JSON.stringify(peerLines));
    // Nothing reaches the agent's per-device checks: the handler drops what could not be a device.
    assert.deepEqual(
      runner.logs().filter((l) => l.msg.includes('bad device')),
      [],
    );
  });

  it('carries a service through a standalone agent: published -> Device with the properties -> withdrawn -> Device gone after the grace period', async () => {
    const { net } = await peers();
    const agentNs = net.ns('agent');
    const dir = scratchDir('mdns-agent');
    const stateDir = path.join(dir, 'state');
    const config = path.join(dir, 'edgebridge.yaml');
    writeFileSync(
      config,
      [
        'apiVersion: edgebridge.io/v1alpha1',
        'kind: Discovery',
        'metadata: { name: printers, namespace: default }',
        'spec:',
        `  handler: { name: mdns, details: { interfaces: [${agentNs.ifname}], serviceTypes: [_agent._tcp] } }`,
        '  gracePeriodSeconds: 2',
        '',
      ].join('\n'),
    );
    const agent = spawnStandaloneAgent(agentNs, {
      name: 'mdns-agent',
      config,
      stateDir,
      logDir: dir,
    });
    runners.push(agent);
    const devices = () => standaloneDevices(config, stateDir);
    const service = await publish('Agent Printer', { rp: 'queue1' }, '_agent._tcp');
    const [device] = await agent.waitUntil(
      'the Device',
      async () => {
        const items = await devices().catch(() => []);
        // SRV and A records may come in separate answers: wait for the address too.
        return items.length > 0 && items[0]?.spec.properties.MDNS_ADDRESSES !== ''
          ? items
          : undefined;
      },
      30_000,
    );
    assert.equal(device?.spec.id, 'Agent Printer._agent._tcp.local');
    assert.equal(device?.spec.handler, 'mdns');
    assert.equal(device?.spec.properties.MDNS_TXT_RP, 'queue1');
    assert.equal(device?.spec.properties.MDNS_ADDRESSES, net.ns('avahi').address);
    await service.unpublish();
    await agent.waitUntil(
      'the Device to go',
      async () => ((await devices()).length === 0 ? true : undefined),
      30_000,
    );
  });
});
