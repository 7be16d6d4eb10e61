// Discovery of network devices (ONVIF over WS-Discovery), end to end through
// a standalone agent in a network namespace, camera peers in others:
//   Hello -> Device registered: a camera starts and says Hello (the
//   Discovery probes once an hour, so only the Hello can bring it) until the
//   agent's edgebridge_devices counts it; ROUNDS cameras (default 5).
//   Probe-only camera -> Device: a camera that says no Hello, started at a
//   random point of the 10 s probe interval, until it is counted; ROUNDS cameras.
//   100 cameras: one peer answering as 100 cameras (each after a random delay
//   up to 500 ms, as the spec asks), from the handler's start to its list of
//   100 (one probe round, probe timeout 2 s included) and to all 100 counted,
//   and the agent's RSS then.
//   Probe traffic: the probes a camera receives over WINDOW seconds (default
//   30), as datagrams and bytes per minute, for one Discovery probing every 10 s.
//   ROUNDS=3 WINDOW=20 npm run bench -- discovery-network   (KEEP=1: keep the logs)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createNetwork } from '../test/harness/netns.ts';
import type { PeerProcess } from '../test/harness/processes.ts';
import { writeStandaloneConfig } from '../test/harness/standalone-config.ts';

const ROUNDS = Math.min(Number(process.env.ROUNDS ?? 5), 50);
const WINDOW_S = Math.min(Number(process.env.WINDOW ?? 30), 300);
const PROBE_INTERVAL_S = 10;
const MANY = 100;
const CLI = path.resolve(import.meta.dirname, '../src/cli/main.ts');
const CAMERA = path.resolve(import.meta.dirname, '../test/peers/fixtures/onvif-camera/main.ts');
const WATCH = path.join(import.meta.dirname, 'helpers', 'metrics-watch.ts');
const work = mkdtempSync(path.join(tmpdir(), 'edgebridge-bench-discovery-network-'));
process.env.EDGEBRIDGE_TEST_RUN_DIR = work;

const uuid = (kind: number, n: number): string =>
  `be0c${kind.toString(16).padStart(4, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const HELLO = 1;
const PROBE = 2;

const net = await createNetwork({ members: ['agent', 'hello-cam', 'probe-cam', 'many'] });
const agentNs = net.ns('agent');
const eb = { interfaces: [agentNs.ifname] };
const config = path.join(work, 'edgebridge.yaml');
const ids = (kind: number): string[] => Array.from({ length: ROUNDS }, (_, i) => uuid(kind, i + 1));
writeStandaloneConfig(config, {
  discoveries: [
    {
      namespace: 'default',
      name: 'hello',
      spec: {
        handler: { name: 'onvif', details: { ...eb, uuids: { items: ids(HELLO) } } },
        intervalSeconds: 3600,
      },
    },
    {
      namespace: 'default',
      name: 'probe',
      spec: {
        handler: { name: 'onvif', details: { ...eb, uuids: { items: ids(PROBE) } } },
        intervalSeconds: PROBE_INTERVAL_S,
      },
    },
    {
      namespace: 'default',
      name: 'many',
      spec: {
        handler: {
          name: 'onvif',
          details: { ...eb, ipAddresses: { items: [net.ns('many').address] } },
        },
        intervalSeconds: 3600,
      },
    },
  ],
});

let count = 0;
const camera = async (role: string, cfg: object): Promise<{ peer: PeerProcess; at: number }> => {
  const ns = net.ns(role);
  const peer = ns.spawn({
    name: `camera-${++count}`,
    command: process.execPath,
    args: [CAMERA, JSON.stringify({ address: ns.address, ...cfg })],
    logDir: work,
  });
  const at = await until('the camera peer', () => {
    const line = peer
      .tail(5)
      .split('\n')
      .find((l) => l.includes('"ready":true'));
    return line === undefined ? undefined : (JSON.parse(line) as { at: number }).at;
  });
  return { peer, at };
};

try {
  const many = await camera('many', { count: MANY, hello: false });
  const agent = agentNs.spawn({
    name: 'agent',
    command: process.execPath,
    args: [
      CLI,
      'agent',
      '--node',
      'bench-node',
      '--http-port',
      '0',
      '--http-host',
      '127.0.0.1',
      '--no-broker',
      '--log-level',
      'info',
      '--standalone',
      '--config',
      config,
      '--state-dir',
      path.join(work, 'state'),
    ],
    logDir: work,
  });
  const agentLog = (): { msg: string; time: number; discovery?: string; port?: number }[] =>
    readFileSync(agent.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; time: number });
  const port = await until(
    'the HTTP endpoint',
    () => agentLog().find((l) => l.msg === 'http endpoint listening')?.port,
  );
  const watch = agentNs.spawn({
    name: 'watch',
    command: process.execPath,
    args: [WATCH, String(port)],
    logDir: work,
  });
  /** The first time `discovery` counted at least `n` devices, by the watcher. */
  const counted = (discovery: string, n: number): Promise<number> =>
    until(
      `${discovery} to count ${n}`,
      () =>
        readFileSync(watch.logFile, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { t: number; devices: Record<string, number> })
          .find((l) => (l.devices[discovery] ?? 0) >= n)?.t,
    );

  // 100 cameras in one round, from the handler's start.
  const manyDone = await counted('many', MANY);
  const manyStart = await until(
    'the many handler start',
    () => agentLog().find((l) => l.msg === 'WS-Discovery probing' && l.discovery === 'many')?.time,
  );
  const manyListed = await until(
    'the many handler list',
    () =>
      agentLog().find(
        (l) =>
          l.msg === 'ONVIF cameras listed' &&
          l.discovery === 'many' &&
          (l as { cameras?: number }).cameras === MANY,
      )?.time,
  );
  const rss =
    Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))?.[1]) / 1024;

  const hello: number[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const { peer, at } = await camera('hello-cam', { cameras: [{ uuid: uuid(HELLO, i) }] });
    hello.push((await counted('hello', i)) - at);
    await peer.stop();
  }
  const probe: number[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    await sleep(Math.random() * PROBE_INTERVAL_S * 1000);
    const { peer, at } = await camera('probe-cam', {
      cameras: [{ uuid: uuid(PROBE, i) }],
      hello: false,
      silent: true,
    });
    probe.push((await counted('probe', i)) - at);
    await peer.stop();
  }

  // Probe traffic: what the 100-camera peer receives over the window (only `probe` polls now).
  const probes = async (): Promise<{ datagrams: number; bytes: number }> => {
    const before = many.peer
      .tail(1000)
      .split('\n')
      .filter((l) => l.includes('"probes"')).length;
    many.peer.signal('SIGUSR2');
    return until('the probe count', () => {
      const lines = many.peer
        .tail(1000)
        .split('\n')
        .filter((l) => l.includes('"probes"'));
      const last = lines.at(-1);
      return lines.length > before && last !== undefined
        ? (JSON.parse(last) as { probes: { datagrams: number; bytes: number } }).probes
        : undefined;
    });
  };
  const p0 = await probes();
  await sleep(WINDOW_S * 1000);
  const p1 = await probes();
  const perMinute = (x: number): string => ((x * 60) / WINDOW_S).toFixed(0);

  const stats = (xs: number[]): string => {
    const s = [...xs].sort((a, b) => a - b);
    return `median ${(s[Math.floor(s.length / 2)] ?? 0).toFixed(0)} ms, max ${(s.at(-1) ?? 0).toFixed(0)} ms`;
  };
  console.log(
    `discovery-network (${ROUNDS} rounds, load ${loadavg()[0]?.toFixed(1)}, namespaces on one bridge)`,
  );
  console.log(`  Hello -> Device registered:           ${stats(hello)}  (target < 2000 ms)`);
  console.log(
    `  probe-only camera -> Device:          ${stats(probe)}  (target < interval ${PROBE_INTERVAL_S} s + 2 s)`,
  );
  console.log(
    `  ${MANY} cameras in one round: listed by the handler ${(manyListed - manyStart).toFixed(0)} ms after its start (probe timeout 2 s), all ${MANY} Devices registered at ${(manyDone - manyStart).toFixed(0)} ms; agent RSS ${rss.toFixed(0)} MB`,
  );
  console.log(
    `  probe traffic, one Discovery every ${PROBE_INTERVAL_S} s, one interface: ${perMinute(p1.datagrams - p0.datagrams)} datagrams, ${perMinute(p1.bytes - p0.bytes)} bytes per minute`,
  );
  await watch.stop();
  await agent.stop();
  await many.peer.stop();
  if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
} finally {
  await net.destroy();
}

/** Polls `check` every 5 ms until it gives a value; fails after 60 s. */
async function until<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let v: T | undefined;
    try {
      v = await check();
    } catch {
      v = undefined; // a log line still being written
    }
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; logs in ${work}`);
    await sleep(5);
  }
}
