// N agents (distinct node names, in this process) x M simulated devices against
// a real control plane, with `edgebridge controller` folding their slices into
// Devices: time to converge from the Discovery's creation (the agents already
// running), API writes per device (agents' and the controller's), writes in
// steady state; then one real agent process with 1,000 devices and its RSS,
// and the controller's RSS. Two fleets:
//   shared: every node sees the same M devices (network cameras on one LAN):
//           M Devices, each listing N nodes, each node applying its own entry;
//   local:  each node has M devices of its own (USB, serial): N x M Devices
//           with one node each (one Discovery per node, by nodeSelector).
// AGENTS, DEVICES, STEADY_SECONDS and RSS_DEVICES (0: none) set the sizes; FLEETS picks
// the fleets (default "shared,local"); CONTROLLER_ARGS adds controller flags;
// FAR_EDGE_MS puts the agents behind Toxiproxy with that latency each way;
// CONTROLLER_NODE_OPTIONS is the controller's NODE_OPTIONS (e.g. "--cpu-prof
// --cpu-prof-dir=/tmp/prof" to see where its CPU goes).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Agent } from '../src/agent/agent.ts';
import { discardingPublisher } from '../src/agent/discarding-publisher.ts';
import { AgentMetrics } from '../src/metrics.ts';
import { loadKubeConfigFiles } from '../src/registry/kubernetes/client/kubeconfig.ts';
import { KubeClient } from '../src/registry/kubernetes/client/kube-client.ts';
import { runInformer } from '../src/registry/kubernetes/client/informer.ts';
import { listWatch } from '../src/registry/kubernetes/client/list-watch.ts';
import { KubernetesRegistry } from '../src/registry/kubernetes/registry.ts';
import type { Device, DeviceSlice } from '../src/api/types.ts';
import { startAgent } from '../test/harness/agent.ts';
import { proxyApiServer, startToxiproxy, type Toxiproxy } from '../test/harness/toxiproxy.ts';
import { AGENT_NODE_ARGS, UPLINK_NODE_ARGS } from '../test/harness/node-flags.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { installCrds } from '../test/harness/crds.ts';
import { edgeObjects, writeDevicesFile } from '../test/harness/devices.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../test/harness/controller.ts';
import { createReadyNode, testNamespace } from '../test/harness/kube.ts';
import { installAgentRbac } from '../test/harness/rbac.ts';
import { scratchDir } from '../test/harness/workdir.ts';

const AGENTS = Number(process.env.AGENTS ?? '50');
const DEVICES = Number(process.env.DEVICES ?? '200');
const STEADY_SECONDS = Number(process.env.STEADY_SECONDS ?? '60');
const RSS_DEVICES = Number(process.env.RSS_DEVICES ?? '1000');
const FLEETS = (process.env.FLEETS ?? 'shared,local').split(',').filter((f) => f !== '');
const FAR_EDGE_MS = Number(process.env.FAR_EDGE_MS ?? '0');
const ROOT = path.resolve(import.meta.dirname, '..');

const cp = new ControlPlane(scratchDir('bench-control-plane'));
const results: [string, string][] = [];
const dir = scratchDir('bench-devices');
const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'error' });

type Info = Awaited<ReturnType<ControlPlane['ensure']>>;

/** CPU seconds (user + system) a process has used, from /proc (0 once it is gone). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // utime and stime, in clock ticks (100 per second on Linux).
    const [utime, stime] = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .slice(11, 13);
    return (Number(utime) + Number(stime)) / 100;
  } catch {
    return 0;
  }
}

/** This process's children running `command` (the control plane's, started by the harness). */
function childPids(command: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === command && ppid === process.pid) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** CPU seconds so far of the controller, the API server, etcd and this process (the agents). */
function cpuNow(controller: ControllerProcess): Record<string, number> {
  const of = (command: string): number =>
    childPids(command).reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const own = process.cpuUsage();
  return {
    controller: cpuSeconds(controller.process.pid ?? 0),
    'kube-apiserver': of('kube-apiserver'),
    etcd: of('etcd'),
    'agents (bench process)': (own.user + own.system) / 1e6,
  };
}

/** Successful writes of the controller so far, from its /metrics. */
async function controllerWrites(controller: ControllerProcess): Promise<number> {
  const { body } = await controller.get('/metrics');
  let sum = 0;
  for (const m of body.matchAll(/^edgebridge_controller_api_requests_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = m[1] ?? '';
    if (/verb="(create|update|patch|delete)"/.test(labels) && labels.includes('code="2xx"'))
      sum += Number(m[2]);
  }
  return sum;
}

/** Runs AGENTS agents, creates the Discovery, waits until every expected Device lists its nodes, then STEADY_SECONDS more. */
async function fleet(
  info: Info,
  kind: 'shared' | 'local',
  controller: ControllerProcess,
  agentKubeconfig: string,
): Promise<void> {
  const ns = await testNamespace(info, `bench-${kind}`);
  const objects = edgeObjects(info, ns.name);
  const nodes = Array.from({ length: AGENTS }, (_, i) => `bench-${kind}-${i}`);
  const devicesFile = (name: string, prefix: string): string => {
    const file = path.join(dir, `${name}.json`);
    writeDevicesFile(
      file,
      Array.from({ length: DEVICES }, (_, i) => ({
        id: `${prefix}dev-${i}`,
        properties: { SIM_INDEX: String(i) },
      })),
    );
    return file;
  };
  for (const node of kind === 'local' ? nodes : []) await createReadyNode(info, node);
  const createDiscoveries = async (): Promise<void> => {
    if (kind === 'shared') {
      await objects.createDiscovery('fleet', {
        handler: { name: 'simulated', details: { file: devicesFile('shared', '') } },
        intervalSeconds: 5,
      });
    } else {
      for (const [i, node] of nodes.entries()) {
        await objects.createDiscovery(`local-${i}`, {
          handler: { name: 'simulated', details: { file: devicesFile(node, `${node}-`) } },
          nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node } },
          intervalSeconds: 5,
        });
      }
    }
  };
  const expected = kind === 'shared' ? DEVICES : AGENTS * DEVICES;
  const nodesEach = kind === 'shared' ? AGENTS : 1;

  // The measuring side watches Devices (a list every second would cost the API server more than the fleet's writes).
  const stop = new AbortController();
  const watcher = new AbortController();
  let complete = 0;
  let converged: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (converged = resolve));
  const client = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
  const watching = runInformer<Device>(
    {
      source: listWatch<Device>(
        client,
        `/apis/edgebridge.io/v1alpha1/namespaces/${ns.name}/devices`,
      ),
      onSync: (items) => {
        complete = 0;
        for (const d of items) if ((d.status?.nodes ?? []).length === nodesEach) complete += 1;
        if (items.length === expected && complete === expected) converged();
      },
      log,
      what: 'devices',
    },
    watcher.signal,
  );

  // When the agents' slices list every device on every node: the controller's part begins at the latest then.
  let slicesAt: number | undefined;
  const watchingSlices = runInformer<DeviceSlice>(
    {
      source: listWatch<DeviceSlice>(
        client,
        `/apis/edgebridge.io/v1alpha1/namespaces/${ns.name}/deviceslices`,
      ),
      onSync: (items) => {
        const listed = items.reduce((sum, s) => sum + s.spec.devices.length, 0);
        if (slicesAt === undefined && listed >= AGENTS * DEVICES) slicesAt = performance.now();
      },
      log,
      what: 'deviceslices',
    },
    watcher.signal,
  );

  const metrics: AgentMetrics[] = [];
  const registries: KubernetesRegistry[] = [];
  const runs = nodes.map((node) => {
    const m = new AgentMetrics({ processMetrics: false });
    metrics.push(m);
    const registry = new KubernetesRegistry({
      connection: loadKubeConfigFiles([agentKubeconfig]),
      fieldManager: node,
      log,
      onRequest: (verb, resource, code) => m.apiRequests.inc({ verb, resource, code }),
    });
    registries.push(registry);
    const agent = new Agent({
      node,
      registry,
      log: log.child({ node }),
      metrics: m,
      publishers: () => discardingPublisher(m.publishDropped),
    });
    return agent.run(stop.signal);
  });
  const controllerBefore = await controllerWrites(controller);
  const writes = async (): Promise<number> => {
    let sum = (await controllerWrites(controller)) - controllerBefore;
    for (const m of metrics) {
      for (const v of (await m.apiRequests.get()).values)
        if (
          /^(apply|create|update|patch|delete)$/.test(String(v.labels.verb ?? '')) &&
          v.labels.code === '2xx'
        )
          sum += v.value;
    }
    return sum;
  };
  // The agents are running (they found no Discovery yet): the clock starts with the Discovery.
  await sleep(2000);
  const cpuBefore = cpuNow(controller);
  const started = performance.now();
  await createDiscoveries();
  const progress = setInterval(() => {
    if (process.env.BENCH_VERBOSE !== undefined)
      console.error(
        `${kind}: ${((performance.now() - started) / 1000).toFixed(1)} s, ${complete}/${expected} complete`,
      );
  }, 5000);
  const limitS = Number(process.env.CONVERGE_LIMIT_S ?? '900');
  try {
    const timedOut = await Promise.race([
      done.then(() => false),
      // Unreferenced: once converged, this timer must not hold the process.
      sleep(limitS * 1000, undefined, { ref: false }).then(() => true),
    ]);
    if (timedOut)
      throw new Error(
        `${kind}: not converged in ${limitS} s: ${complete}/${expected} Devices complete`,
      );
    const convergeS = (performance.now() - started) / 1000;
    const cpuAfter = cpuNow(controller);
    // The watch can show the last writes before their responses reach the
    // agents, which count a write on its response: let those arrive first.
    await sleep(2000);
    const writesAtConvergence = await writes();
    const what =
      kind === 'shared'
        ? `${AGENTS} agents x the same ${DEVICES} devices (${DEVICES} Devices)`
        : `${AGENTS} agents x ${DEVICES} devices each (${expected} Devices)`;
    results.push([`${what}: time to converge`, `${convergeS.toFixed(1)} s (target < 30 s)`]);
    if (slicesAt !== undefined)
      results.push([
        '  of which: until the slices list every device; then the controller',
        `${((slicesAt - started) / 1000).toFixed(1)} s; ${(convergeS - (slicesAt - started) / 1000).toFixed(1)} s`,
      ]);
    results.push([
      '  CPU seconds until converged',
      Object.entries(cpuAfter)
        .map(([k, v]) => `${k} ${(v - (cpuBefore[k] ?? 0)).toFixed(1)}`)
        .join(', ') + ` (load average ${os.loadavg()[0]?.toFixed(1) ?? '?'})`,
    ]);
    results.push([
      '  API writes per device',
      `${(writesAtConvergence / expected).toFixed(2)} (${writesAtConvergence} writes; ${(writesAtConvergence / (DEVICES * AGENTS)).toFixed(2)} per device per node)`,
    ]);
    await sleep(STEADY_SECONDS * 1000);
    const steady = (await writes()) - writesAtConvergence;
    results.push([
      `  writes per minute in steady state (over ${STEADY_SECONDS} s)`,
      `${((steady * 60) / STEADY_SECONDS).toFixed(1)} (target 0)`,
    ]);
  } finally {
    clearInterval(progress);
    stop.abort();
    watcher.abort();
    await Promise.all(runs);
    await watching;
    await watchingSlices;
    client.close();
    await Promise.all(registries.map((r) => r.close()));
    // Later agents must not run this fleet's Discoveries (its Devices stay: no garbage collector runs here).
    if (kind === 'shared') await objects.deleteDiscovery('fleet');
    else for (const i of nodes.keys()) await objects.deleteDiscovery(`local-${i}`);
  }
}

let controller: ControllerProcess | undefined;
let toxiproxy: Toxiproxy | undefined;
try {
  const info = await cp.ensure();
  await installCrds(info);
  await installAgentRbac(info);
  await installControllerRbac(info);
  controller = await startController(info, {
    // CONTROLLER_ARGS: more flags for the controller, e.g. "--workers 16".
    extraArgs: [
      '--log-level',
      'info',
      ...(process.env.CONTROLLER_ARGS ?? '').split(' ').filter(Boolean),
    ],
    ...(process.env.CONTROLLER_NODE_OPTIONS !== undefined
      ? { env: { NODE_OPTIONS: process.env.CONTROLLER_NODE_OPTIONS } }
      : {}),
  });
  // FAR_EDGE_MS: the agents' API traffic crosses Toxiproxy with this much added
  // each way (150: a 300 ms round trip); the controller stays near the API server.
  let agentKubeconfig = info.kubeconfigs.agent;
  if (FAR_EDGE_MS > 0) {
    toxiproxy = await startToxiproxy();
    const { link, kubeconfig } = await proxyApiServer(toxiproxy, info, 'agent');
    await link.addLatency(FAR_EDGE_MS);
    agentKubeconfig = kubeconfig;
    results.push(['agents behind Toxiproxy, added each way', `${FAR_EDGE_MS} ms`]);
  }
  for (const kind of FLEETS) {
    if (kind !== 'shared' && kind !== 'local') throw new Error(`FLEETS: unknown fleet '${kind}'`);
    await fleet(info, kind, controller, agentKubeconfig);
  }
  results.push([
    'controller CPU time over the run',
    `${cpuSeconds(controller.process.pid ?? 0).toFixed(1)} s`,
  ]);
  const controllerStatus = readFileSync(`/proc/${String(controller.process.pid)}/status`, 'utf8');
  results.push([
    'controller RSS after the fleets',
    `${(Number(/VmRSS:\s+(\d+)/.exec(controllerStatus)?.[1] ?? NaN) / 1024).toFixed(1)} MB (peak ${(Number(/VmHWM:\s+(\d+)/.exec(controllerStatus)?.[1] ?? NaN) / 1024).toFixed(1)} MB)`,
  ]);
  const ns = await testNamespace(info, 'bench');
  const objects = edgeObjects(info, ns.name);
  // RSS_DEVICES=0 skips the single-agent RSS runs (and their build).
  const rssRuns = RSS_DEVICES > 0;

  // One real agent process, alone on its node, with RSS_DEVICES devices: as
  // the image runs it (built JavaScript, V8's lite mode), the same without the
  // embedded broker (the agent core alone), with the JIT on (as the uplink
  // patch runs it), and from the TypeScript sources with default flags (how
  // the tests run it).
  const build = rssRuns
    ? spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
    : undefined;
  if (build !== undefined && build.status !== 0) throw new Error('npm run build failed');
  const built = path.join(ROOT, 'dist/src/cli/main.js');
  const variants = [
    { name: 'built, as the image runs it', cli: built, nodeArgs: AGENT_NODE_ARGS, args: [] },
    {
      name: 'built, no node broker',
      cli: built,
      nodeArgs: AGENT_NODE_ARGS,
      args: ['--no-broker'],
    },
    { name: 'built, JIT on as with the uplink', cli: built, nodeArgs: UPLINK_NODE_ARGS, args: [] },
    { name: 'from the sources, default flags', cli: undefined, nodeArgs: [], args: [] },
  ];
  for (const [i, v] of rssRuns ? variants.entries() : []) {
    const discovery = `big-${i}`;
    const node = `rss-node-${i}`;
    const bigFile = path.join(dir, `${discovery}.json`);
    writeDevicesFile(
      bigFile,
      Array.from({ length: RSS_DEVICES }, (_, j) => ({
        id: `${discovery}-${j}`,
        properties: { SIM_INDEX: String(j) },
      })),
    );
    await objects.createDiscovery(discovery, {
      handler: { name: 'simulated', details: { file: bigFile } },
      intervalSeconds: 5,
    });
    const agent = await startAgent({
      node,
      registryArgs: ['--kubeconfig', info.kubeconfigs.agent],
      extraArgs: ['--log-level', 'info', ...v.args],
      nodeArgs: v.nodeArgs,
      ...(v.cli !== undefined ? { cli: v.cli } : {}),
    });
    const t = performance.now();
    while (
      (await objects.devices(discovery)).filter((d) =>
        d.status?.nodes?.some((n) => n.name === node),
      ).length < RSS_DEVICES
    ) {
      if (performance.now() - t > 300_000)
        throw new Error('the RSS agent did not converge in 300 s');
      await sleep(500);
    }
    const registerS = (performance.now() - t) / 1000;
    await sleep(5000);
    const status = readFileSync(`/proc/${String(agent.process.pid)}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    const mb = (field: string): string =>
      (Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024).toFixed(1);
    results.push([
      `agent RSS with ${RSS_DEVICES} devices (${v.name})`,
      `${(rssKb / 1024).toFixed(1)} MB (peak ${(hwmKb / 1024).toFixed(1)} MB; target < 80 MB)`,
    ]);
    results.push([
      '  of which anonymous / mapped files (node binary)',
      `${mb('RssAnon')} / ${mb('RssFile')} MB`,
    ]);
    results.push([`  time to register ${RSS_DEVICES} devices`, `${registerS.toFixed(1)} s`]);
    await agent.stop();
    // Its Devices stay (no garbage collector here); the next agent has its own Discovery.
    await objects.deleteDiscovery(discovery);
  }
} finally {
  await toxiproxy?.stop();
  await controller?.stop();
  await cp.stop();
}
console.log('\nedgebridge agent convergence benchmark');
for (const [k, v] of results) console.log(`${k.padEnd(64)} ${v}`);
