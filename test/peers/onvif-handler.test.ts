import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { createNetwork, type Namespace, type Network } from '../harness/netns.ts';
import type { PeerProcess } from '../harness/processes.ts';
import { scratchDir } from '../harness/workdir.ts';
import { spawnStandaloneAgent, standaloneDevices } from './fixtures/standalone-agent.ts';
import { UNSOLICITED, type CameraSpec } from './fixtures/onvif-camera/wsd-messages.ts';

// The onvif handler's WS-Discovery side against the camera peer: cameras in
// their own namespaces, the handler (the run-handler fixture or `edgebridge
// scan`) in the agent's, all on one bridge; a far camera behind a router
// namespace that multicast does not cross. The handler is always given the
// namespace's interface: it never probes this machine's real interfaces.

const root = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(root, 'src/cli/main.ts');
const RUNNER = path.join(import.meta.dirname, 'fixtures', 'run-handler.ts');
const CAMERA = path.join(import.meta.dirname, 'fixtures', 'onvif-camera', 'main.ts');
const FUZZER = path.join(import.meta.dirname, 'fixtures', 'wsd-fuzzer.ts');

interface Item {
  id: string;
  properties: Record<string, string>;
}

const uuid = (n: number): string => `c0ffee00-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const urn = (n: number): string => `urn:uuid:${uuid(n)}`;
const location = (where: string): string => `onvif://www.onvif.org/location/${where}`;

describe('the onvif handler against camera peers (WS-Discovery)', () => {
  const members = ['agent', 'cam-a', 'cam-b', 'late', 'quiet', 'noise', 'fuzzer'];
  let started: Promise<Network> | undefined;
  const network = (): Promise<Network> =>
    (started ??= createNetwork({ members }).then(async (net) => {
      // The always-on peers: a camera in each of cam-a and cam-b, and in noise a
      // Windows WSD host and a camera match without XAddrs, which must never be listed.
      await startCamera(net.ns('cam-a'), {
        cameras: [
          { uuid: uuid(0xa), scopes: [location('a'), 'onvif://www.onvif.org/name/Cam%20A'] },
        ],
      });
      await startCamera(net.ns('cam-b'), {
        cameras: [
          { uuid: uuid(0xb), scopes: [location('b'), 'onvif://www.onvif.org/hardware/B2'] },
        ],
      });
      await startCamera(net.ns('noise'), {
        cameras: [
          { uuid: uuid(0xc0), types: 'pub:Computer' },
          { uuid: uuid(0xc1), xaddrs: [] },
        ],
      });
      return net;
    }));
  const processes: PeerProcess[] = [];
  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    const net = await started?.catch(() => undefined);
    await net?.destroy();
  });

  let count = 0;
  async function startCamera(
    ns: Namespace,
    config: { cameras: CameraSpec[]; silent?: boolean },
  ): Promise<PeerProcess> {
    const p = ns.spawn({
      name: `onvif-camera-${++count}-${ns.role}`,
      command: process.execPath,
      args: [CAMERA, JSON.stringify({ address: ns.address, ...config })],
      logDir: scratchDir('onvif-handler'),
    });
    processes.push(p);
    await p.waitUntil(
      'the camera peer to be ready',
      () => (p.tail(5).includes('"ready":true') ? true : undefined),
      60_000,
    );
    return p;
  }

  /** The handler running in the agent namespace with `details`; lists() reads what it printed. */
  const startRunner = async (details: object, intervalSeconds = 5, ns?: Namespace) => {
    const net = await network();
    const agent = ns ?? net.ns('agent');
    const p = agent.spawn({
      name: `onvif-runner-${++count}`,
      command: process.execPath,
      args: [
        RUNNER,
        'onvif',
        JSON.stringify({ interfaces: [agent.ifname], probeTimeoutSeconds: 1, ...details }),
        String(intervalSeconds),
      ],
      logDir: scratchDir('onvif-handler'),
    });
    processes.push(p);
    const lines = (prefix: string): string[] =>
      p
        .tail(100_000)
        .split('\n')
        .filter((l) => l.startsWith(prefix));
    const lists = (): Item[][] =>
      lines('{"items"').flatMap((l) => {
        try {
          return [(JSON.parse(l) as { items: Item[] }).items];
        } catch {
          return []; // the last line, still being written
        }
      });
    const logs = (): { msg: string; level: number; peer?: string; endpoint?: string }[] =>
      lines('{"level"').map((l) => JSON.parse(l) as { msg: string; level: number });
    // Generous: the machine is shared, and eight node processes starting at once can take many seconds.
    const waitFor = (what: string, ok: (items: Item[]) => boolean, timeoutMs = 60_000) =>
      p.waitUntil(what, () => lists().find(ok), timeoutMs);
    const reaches = async (expected: string[]) => {
      await waitFor(`exactly ${expected.join(', ')}`, (l) => isDeepStrictEqual(ids(l), expected));
      for (const l of lists())
        assert.deepEqual(
          ids(l).filter((id) => !expected.includes(id)),
          [],
          'a list outside the selection',
        );
    };
    return { process: p, lists, logs, waitFor, reaches };
  };
  const ids = (items: Item[]): string[] => items.map((i) => i.id).sort();

  it('finds two cameras with their properties, and never a WSD computer or a match without XAddrs', async () => {
    const net = await network();
    const runner = await startRunner({});
    await runner.reaches([urn(0xa), urn(0xb)]);
    const item = runner
      .lists()
      .at(-1)
      ?.find((i) => i.id === urn(0xa));
    assert.deepEqual(item?.properties, {
      ONVIF_DEVICE_SERVICE_URL: `http://${net.ns('cam-a').address}/onvif/device_service`,
      ONVIF_DEVICE_UUID: uuid(0xa),
      ONVIF_DEVICE_IP_ADDRESS: net.ns('cam-a').address,
      ONVIF_SCOPES: `${location('a')} onvif://www.onvif.org/name/Cam%20A`,
      ONVIF_NAME: 'Cam A',
    });
    // The noise peer's two endpoints, never devices: one line for the peer (per minute).
    const noise = runner.logs().filter((l) => l.peer === net.ns('noise').address);
    assert.equal(noise.length, 1, JSON.stringify(noise));
    assert.match(noise[0]?.msg ?? '', /Types lack NetworkVideoTransmitter|no http\(s\) XAddr/);
  });

  it('lists a camera on its Hello alone and drops it on its Bye', async () => {
    const net = await network();
    // An hour between probes: after the first round, only a Hello can bring the camera.
    const runner = await startRunner({}, 3600);
    await runner.reaches([urn(0xa), urn(0xb)]);
    const late = await startCamera(net.ns('late'), { cameras: [{ uuid: uuid(0x1a7e) }] });
    await runner.waitFor('the camera that said Hello', (l) => l.some((i) => i.id === urn(0x1a7e)));
    assert.ok(
      runner
        .logs()
        .some((l) => l.msg === 'ONVIF camera found' && JSON.stringify(l).includes('"how":"hello"')),
    );
    // Counted before the camera leaves: the list without it may come before stop() returns.
    const seen = runner.lists().length;
    await late.stop();
    await runner.process.waitUntil('the camera to go on its Bye', () =>
      runner
        .lists()
        .slice(seen)
        .find((l) => isDeepStrictEqual(ids(l), [urn(0xa), urn(0xb)])),
    );
    assert.ok(runner.logs().some((l) => l.msg === 'ONVIF camera said Bye'));
  });

  it(`drops a camera that leaves silently once it has missed three probe rounds`, async () => {
    const net = await network();
    const quiet = await startCamera(net.ns('quiet'), {
      cameras: [{ uuid: uuid(0x9) }],
      silent: true,
    });
    const runner = await startRunner({ uuids: { items: [uuid(0x9)] } }, 1);
    await runner.reaches([urn(0x9)]);
    // Counted before the camera leaves: the list without it may come before stop() returns.
    const seen = runner.lists().length;
    await quiet.stop();
    await runner.process.waitUntil(
      'the silent camera to expire',
      () =>
        runner
          .lists()
          .slice(seen)
          .find((l) => l.length === 0),
      60_000,
    );
    assert.ok(!runner.logs().some((l) => l.msg === 'ONVIF camera said Bye'));
  });

  it('selects by IP address, MAC address, scope and UUID (Include and Exclude)', async () => {
    const net = await network();
    const { stdout } = await net.ns('cam-a').exec('/usr/sbin/ip', ['-j', 'link', 'show', 'eb0']);
    const mac = (JSON.parse(stdout) as { address: string }[])[0]?.address ?? '';
    assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const cases: [object, string[]][] = [
      [{ ipAddresses: { items: [net.ns('cam-b').address] } }, [urn(0xb)]],
      [{ ipAddresses: { action: 'Exclude', items: [net.ns('cam-b').address] } }, [urn(0xa)]],
      [{ macAddresses: { items: [mac.toUpperCase()] } }, [urn(0xa)]],
      [{ macAddresses: { action: 'Exclude', items: [mac] } }, [urn(0xb)]],
      [{ scopes: { items: [location('b')] } }, [urn(0xb)]],
      [{ scopes: { action: 'Exclude', items: [location('b')] } }, [urn(0xa)]],
      [{ uuids: { items: [urn(0xa)] } }, [urn(0xa)]],
      [{ uuids: { action: 'Exclude', items: [uuid(0xa)] } }, [urn(0xb)]],
    ];
    const runners = await Promise.all(cases.map(([details]) => startRunner(details, 2)));
    for (const [i, r] of runners.entries()) await r.reaches(cases[i]?.[1] ?? []);
  });

  it('probes by unicast a camera behind a router that multicast does not cross', async () => {
    const net = await network();
    const far = await createNetwork({ members: ['router', 'far-cam'] });
    try {
      const agent = net.ns('agent');
      const router = far.ns('router');
      const farCam = far.ns('far-cam');
      // A link agent <-> router, and routes both ways through the router.
      const link = `10.214.${(process.pid % 250) + 1}`;
      await agent.exec('/usr/sbin/ip', [
        'link',
        'add',
        'eb1',
        'type',
        'veth',
        'peer',
        'name',
        'eb1',
        'netns',
        router.name,
      ]);
      await agent.exec('/usr/sbin/ip', ['addr', 'add', `${link}.1/30`, 'dev', 'eb1']);
      await agent.exec('/usr/sbin/ip', ['link', 'set', 'eb1', 'up']);
      await agent.exec('/usr/sbin/ip', ['route', 'add', far.subnet, 'via', `${link}.2`]);
      await router.exec('/usr/sbin/ip', ['addr', 'add', `${link}.2/30`, 'dev', 'eb1']);
      await router.exec('/usr/sbin/ip', ['link', 'set', 'eb1', 'up']);
      await router.exec('/usr/sbin/sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      await farCam.exec('/usr/sbin/ip', ['route', 'add', `${link}.0/30`, 'via', router.address]);
      await startCamera(farCam, { cameras: [{ uuid: uuid(0xfa) }] });

      const multicastOnly = await startRunner({ uuids: { items: [uuid(0xfa)] } }, 2);
      const unicast = await startRunner(
        { uuids: { items: [uuid(0xfa)] }, unicastTargets: [`${farCam.address}/30`] },
        2,
      );
      const [item] = await unicast.waitFor('the far camera', (l) => l.length === 1);
      assert.equal(item?.properties.ONVIF_DEVICE_IP_ADDRESS, farCam.address);
      // By then the multicast-only handler has listed, and never the far camera.
      await multicastOnly.process.waitUntil('a first list', () => multicastOnly.lists()[0]);
      assert.deepEqual(multicastOnly.lists().flat(), []);
    } finally {
      await far.destroy();
    }
  });

  it('is what `edgebridge scan onvif -o json` prints', async () => {
    const net = await network();
    const agent = net.ns('agent');
    const { stdout } = await agent.exec(
      process.execPath,
      [
        CLI,
        'scan',
        'onvif',
        '--details',
        JSON.stringify({ interfaces: [agent.ifname], scopes: { items: [location('b')] } }),
        '-o',
        'json',
      ],
      { timeout: 60_000 },
    );
    const out = JSON.parse(stdout) as { items: (Item & { labels: object })[] };
    assert.deepEqual(
      out.items.map((i) => [i.id, i.properties.ONVIF_HARDWARE]),
      [[urn(0xb), 'B2']],
    );
    const bad = await agent
      .exec(process.execPath, [
        CLI,
        'scan',
        'onvif',
        '--details',
        '{"unicastTargets":["10.0.0.0/8"]}',
      ])
      .then(
        () => undefined,
        (err: unknown) => err as { code: number; stderr: string },
      );
    assert.equal(bad?.code, 2);
    assert.match(bad?.stderr ?? '', /details\.unicastTargets: must hold at most 1024 addresses/);
  });

  it('shrugs off hostile and 2,000 mutated datagrams, logging once per peer, and still finds cameras', async () => {
    const net = await network();
    const runner = await startRunner({ ipAddresses: { items: [net.ns('cam-a').address] } }, 2);
    await runner.reaches([urn(0xa)]);
    const all = await startRunner({}, 2);
    await all.reaches([urn(0xa), urn(0xb)]);
    const { stdout } = await net
      .ns('fuzzer')
      .exec(process.execPath, [FUZZER, net.ns('fuzzer').address, '2000', '11'], {
        timeout: 120_000,
      });
    assert.deepEqual(JSON.parse(stdout), { sent: 2009, failed: 0 });
    // A camera that appears after the fuzzing is still found, and the runner still runs.
    const late = await startCamera(net.ns('late'), {
      cameras: [{ uuid: uuid(0xafe) }],
    });
    await all.waitFor('the camera after the fuzzing', (l) => l.some((i) => i.id === urn(0xafe)));
    await late.stop();
    assert.equal(runner.process.exited, false);
    // ProbeMatches that answer no probe of ours are never listed.
    assert.ok(!all.lists().some((l) => l.some((i) => i.id === `urn:uuid:${UNSOLICITED}`)));
    // One warning for the fuzzer's address (per minute); cameras it made up come and go in one debug line each at most.
    const fuzzerLines = runner.logs().filter((l) => l.peer === net.ns('fuzzer').address);
    const warnings = fuzzerLines.filter((l) => l.level >= 40);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    const events = fuzzerLines.filter((l) => l.level < 40).map((l) => `${l.msg} ${l.endpoint}`);
    assert.equal(events.length, new Set(events).size, JSON.stringify(events));
    assert.deepEqual(
      runner.logs().filter((l) => l.msg.includes('bad device')),
      [],
    );
  });
  it('carries a camera through a standalone agent: Hello -> Device with the properties -> Bye -> Device gone after the grace period', async () => {
    const net = await network();
    const agentNs = net.ns('agent');
    const dir = scratchDir('onvif-agent');
    const stateDir = path.join(dir, 'state');
    const config = path.join(dir, 'edgebridge.yaml');
    writeFileSync(
      config,
      [
        'apiVersion: edgebridge.io/v1alpha1',
        'kind: Discovery',
        'metadata: { name: cameras, namespace: default }',
        'spec:',
        `  handler: { name: onvif, details: { interfaces: [${agentNs.ifname}], uuids: { items: [${uuid(0xa6e)}] } } }`,
        '  intervalSeconds: 3600',
        '  gracePeriodSeconds: 2',
        '',
      ].join('\n'),
    );
    const agent = spawnStandaloneAgent(agentNs, {
      name: 'onvif-agent',
      config,
      stateDir,
      logDir: dir,
    });
    processes.push(agent);
    const devices = () => standaloneDevices(config, stateDir);
    await agent.waitUntil('the first probe round', () =>
      agent.tail(1000).includes('WS-Discovery probing') ? true : undefined,
    );
    const camera = await startCamera(net.ns('late'), {
      cameras: [{ uuid: uuid(0xa6e), scopes: ['onvif://www.onvif.org/name/Gate'] }],
    });
    const [device] = await agent.waitUntil(
      'the Device',
      async () => {
        const items = await devices().catch(() => []);
        return items.length > 0 ? items : undefined;
      },
      60_000,
    );
    assert.equal(device?.spec.id, urn(0xa6e));
    assert.equal(device?.spec.handler, 'onvif');
    assert.deepEqual(device?.spec.properties, {
      ONVIF_DEVICE_SERVICE_URL: `http://${net.ns('late').address}/onvif/device_service`,
      ONVIF_DEVICE_UUID: uuid(0xa6e),
      ONVIF_DEVICE_IP_ADDRESS: net.ns('late').address,
      ONVIF_SCOPES: 'onvif://www.onvif.org/name/Gate',
      ONVIF_NAME: 'Gate',
    });
    await camera.stop();
    await agent.waitUntil(
      'the Device to go',
      async () => ((await devices()).length === 0 ? true : undefined),
      60_000,
    );
  });
});
