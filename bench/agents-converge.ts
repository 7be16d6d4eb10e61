// N agents (distinct node names, in this process) x M shared simulated devices
// against a real control plane: time to converge, API writes per device,
// writes in steady state (successful apply/delete requests); then one real agent process with 1,000 devices and its RSS.
// AGENTS, DEVICES, STEADY_SECONDS and RSS_DEVICES set the sizes.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Agent } from '../src/agent/agent.ts';
import { discardingPublisher } from '../src/agent/discarding-publisher.ts';
import { AgentMetrics } from '../src/metrics.ts';
import { loadKubeConfigFiles } from '../src/registry/kubernetes/client/kubeconfig.ts';
import { KubernetesRegistry } from '../src/registry/kubernetes/registry.ts';
import { startAgent } from '../test/harness/agent.ts';
import { AGENT_NODE_ARGS, UPLINK_NODE_ARGS } from '../test/harness/node-flags.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { installCrds } from '../test/harness/crds.ts';
import { edgeObjects, writeDevicesFile } from '../test/harness/devices.ts';
import { testNamespace } from '../test/harness/kube.ts';
import { installAgentRbac } from '../test/harness/rbac.ts';
import { scratchDir } from '../test/harness/workdir.ts';

const AGENTS = Number(process.env.AGENTS ?? '50');
const DEVICES = Number(process.env.DEVICES ?? '200');
const STEADY_SECONDS = Number(process.env.STEADY_SECONDS ?? '60');
const RSS_DEVICES = Number(process.env.RSS_DEVICES ?? '1000');
// Each poll lists every Device (up to ~14 kB each with 50 nodes): keep the measuring cheap.
const POLL_MS = 1000;
const ROOT = path.resolve(import.meta.dirname, '..');

const cp = new ControlPlane(scratchDir('bench-control-plane'));
const results: [string, string][] = [];
const stop = new AbortController();
try {
  const info = await cp.ensure();
  await installCrds(info);
  await installAgentRbac(info);
  const ns = await testNamespace(info, 'bench');
  const objects = edgeObjects(info, ns.name);
  const dir = scratchDir('bench-devices');
  const file = path.join(dir, 'devices.json');
  writeDevicesFile(
    file,
    Array.from({ length: DEVICES }, (_, i) => ({
      id: `dev-${i}`,
      properties: { SIM_INDEX: String(i) },
    })),
  );
  await objects.createDiscovery('fleet', {
    handler: { name: 'simulated', details: { file } },
    intervalSeconds: 5,
  });

  const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'error' });
  const metrics: AgentMetrics[] = [];
  const registries: KubernetesRegistry[] = [];
  const started = performance.now();
  const runs = Array.from({ length: AGENTS }, (_, i) => {
    const node = `bench-node-${i}`;
    const m = new AgentMetrics({ processMetrics: false });
    metrics.push(m);
    const registry = new KubernetesRegistry({
      connection: loadKubeConfigFiles([info.kubeconfigs.agent]),
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

  const writes = async (): Promise<number> => {
    let sum = 0;
    for (const m of metrics) {
      for (const v of (await m.apiRequests.get()).values)
        if ((v.labels.verb === 'apply' || v.labels.verb === 'delete') && v.labels.code === '2xx')
          sum += v.value;
    }
    return sum;
  };

  for (;;) {
    // An overloaded API server may reset the poll itself; poll again.
    const devices = await objects.devices('fleet').catch(() => undefined);
    if (devices === undefined) {
      await sleep(POLL_MS);
      continue;
    }
    const complete = devices.filter((d) => (d.status?.nodes ?? []).length === AGENTS).length;
    if (devices.length === DEVICES && complete === DEVICES) break;
    if (process.env.BENCH_VERBOSE !== undefined)
      console.error(
        `${((performance.now() - started) / 1000).toFixed(1)} s: ${devices.length} devices, ${complete} complete`,
      );
    if (performance.now() - started > Number(process.env.CONVERGE_LIMIT_S ?? '900') * 1000)
      throw new Error(`not converged in time: ${complete}/${DEVICES} devices complete`);
    await sleep(POLL_MS);
  }
  const convergeS = (performance.now() - started) / 1000;
  const writesAtConvergence = await writes();
  results.push([
    `${AGENTS} agents x ${DEVICES} devices: time to converge`,
    `${convergeS.toFixed(1)} s (target < 30 s)`,
  ]);
  results.push([
    'API writes per device (all nodes)',
    `${(writesAtConvergence / DEVICES).toFixed(2)} (${writesAtConvergence} writes; ${(writesAtConvergence / DEVICES / AGENTS).toFixed(2)} per device per node)`,
  ]);
  await sleep(STEADY_SECONDS * 1000);
  const steady = (await writes()) - writesAtConvergence;
  results.push([
    `writes per minute in steady state (over ${STEADY_SECONDS} s)`,
    `${((steady * 60) / STEADY_SECONDS).toFixed(1)} (target 0)`,
  ]);
  stop.abort();
  await Promise.all(runs);
  await Promise.all(registries.map((r) => r.close()));

  // One real agent process, alone on its node, with RSS_DEVICES devices: as
  // the image runs it (built JavaScript, V8's lite mode), the same without the
  // embedded broker (the agent core alone), with the JIT on (as the uplink
  // patch runs it), and from the TypeScript sources with default flags (how
  // the tests run it).
  await objects.deleteDiscovery('fleet');
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
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
  for (const [i, v] of variants.entries()) {
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
  stop.abort();
  await cp.stop();
}
console.log('\nedgebridge agent convergence benchmark');
for (const [k, v] of results) console.log(`${k.padEnd(64)} ${v}`);
