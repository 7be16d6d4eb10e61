// N agents (distinct node names, in this process) x M shared simulated devices
// against a real control plane: time to converge, API writes per device,
// writes in steady state (successful apply/delete requests); then one real agent process with 1,000 devices and its RSS.
// AGENTS, DEVICES, STEADY_SECONDS and RSS_DEVICES set the sizes.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Agent } from '../src/agent/agent.ts';
import { discardingPublisher } from '../src/agent/discarding-publisher.ts';
import { AgentMetrics } from '../src/metrics.ts';
import { KubernetesRegistry } from '../src/registry/kubernetes/registry.ts';
import { startAgent } from '../test/harness/agent.ts';
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
  const file = path.join(dir, 'devices.yaml');
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
  const started = performance.now();
  const runs = Array.from({ length: AGENTS }, (_, i) => {
    const node = `bench-node-${i}`;
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(info.kubeconfigs.agent);
    const m = new AgentMetrics({ processMetrics: false });
    metrics.push(m);
    const registry = new KubernetesRegistry({
      kubeConfig,
      fieldManager: node,
      log,
      onRequest: (verb, resource, code) => m.apiRequests.inc({ verb, resource, code }),
    });
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
      await sleep(250);
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
    await sleep(250);
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

  // One real agent process, alone on its node, with RSS_DEVICES devices.
  const bigFile = path.join(dir, 'big.yaml');
  writeDevicesFile(
    bigFile,
    Array.from({ length: RSS_DEVICES }, (_, i) => ({
      id: `big-${i}`,
      properties: { SIM_INDEX: String(i) },
    })),
  );
  await objects.deleteDiscovery('fleet');
  await objects.createDiscovery('big', {
    handler: { name: 'simulated', details: { file: bigFile } },
    intervalSeconds: 5,
  });
  const agent = await startAgent({
    node: 'rss-node',
    registryArgs: ['--kubeconfig', info.kubeconfigs.agent],
    extraArgs: ['--log-level', 'info'],
  });
  const t = performance.now();
  while (
    (await objects.devices('big')).filter((d) =>
      d.status?.nodes?.some((n) => n.name === 'rss-node'),
    ).length < RSS_DEVICES
  ) {
    if (performance.now() - t > 300_000) throw new Error('the RSS agent did not converge in 300 s');
    await sleep(500);
  }
  await sleep(5000);
  const status = readFileSync(`/proc/${String(agent.process.pid)}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  results.push([
    `agent RSS with ${RSS_DEVICES} devices`,
    `${(rssKb / 1024).toFixed(1)} MB (peak ${(hwmKb / 1024).toFixed(1)} MB; target < 80 MB)`,
  ]);
  results.push([
    `one agent: time to register ${RSS_DEVICES} devices`,
    `${((performance.now() - t) / 1000).toFixed(1)} s`,
  ]);
  await agent.stop();
} finally {
  stop.abort();
  await cp.stop();
}
console.log('\nedgebridge agent convergence benchmark');
for (const [k, v] of results) console.log(`${k.padEnd(52)} ${v}`);
