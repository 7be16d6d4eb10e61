// The controller's memory with many Devices (issue 13: RSS < 150 MB with
// 10,000). AGENTS agents (in this process) write the slices of DEVICES local
// devices each and stop; one controller (built, with the controller's flags)
// folds them into AGENTS x DEVICES Devices (its RSS and CPU time over that); then a fresh controller is started
// in each variant and measured once its caches synced and its first pass over
// every key drained (nothing to write): from the sources as the tests run it,
// built with the agent's flags (the image's ENTRYPOINT), built with the
// controller's own flags (its Deployment). COMPARE_CLI=<main.ts or main.js of
// another checkout>[,...] measures those too (main.js with the agent's flags);
// NODE_ARGS="<flags>;<flags>" adds the build with each set of node flags;
// CONVERGE_NODE_ARGS="<flags>" runs the first controller with those instead,
// RESTARTS=0 skips the restarts;
// HEAP_SNAPSHOT=1 writes a heap snapshot of the first variant into the
// working directory after its measurement.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Agent } from '../src/agent/agent.ts';
import { discardingPublisher } from '../src/agent/discarding-publisher.ts';
import type { DeviceSlice } from '../src/api/types.ts';
import { AgentMetrics } from '../src/metrics.ts';
import { KubeClient } from '../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../src/registry/kubernetes/client/kubeconfig.ts';
import type { KubeList } from '../src/registry/kubernetes/client/list-watch.ts';
import { KubernetesRegistry } from '../src/registry/kubernetes/registry.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import {
  installControllerRbac,
  startController,
  type ControllerProcess,
} from '../test/harness/controller.ts';
import { installCrds } from '../test/harness/crds.ts';
import { edgeObjects, writeDevicesFile } from '../test/harness/devices.ts';
import { createReadyNode, testNamespace } from '../test/harness/kube.ts';
import { AGENT_NODE_ARGS, CONTROLLER_NODE_ARGS } from '../test/harness/node-flags.ts';
import { installAgentRbac } from '../test/harness/rbac.ts';
import { scratchDir } from '../test/harness/workdir.ts';

const AGENTS = Number(process.env.AGENTS ?? '10');
const DEVICES = Number(process.env.DEVICES ?? '1000');
const EXPECTED = AGENTS * DEVICES;
const ROOT = path.resolve(import.meta.dirname, '..');
const BUILT = path.join(ROOT, 'dist/src/cli/main.js');
const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'error' });
const cp = new ControlPlane(scratchDir('bench-control-plane'));
const results: [string, string][] = [];

/** One sample of a metric from the controller's /metrics (summed over label sets matching `labels`). */
async function metric(c: ControllerProcess, name: string, labels = ''): Promise<number> {
  const { body } = await c.get('/metrics');
  let sum = 0;
  for (const m of body.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm')))
    if ((m[1] ?? '').includes(labels)) sum += Number(m[2]);
  return sum;
}

/** Successful writes of the controller so far. */
async function writes(c: ControllerProcess): Promise<number> {
  const { body } = await c.get('/metrics');
  let sum = 0;
  for (const m of body.matchAll(/^edgebridge_controller_api_requests_total\{([^}]*)\} (\S+)$/gm))
    if (/verb="(create|update|patch|delete)"/.test(m[1] ?? '') && m[1]?.includes('code="2xx"'))
      sum += Number(m[2]);
  return sum;
}

/** Resolves once the controller's queue stayed empty over `quietS` seconds of samples. */
async function idle(c: ControllerProcess, limitS: number, quietS = 3): Promise<void> {
  const deadline = Date.now() + limitS * 1000;
  let quiet = 0;
  let lastAdds = -1;
  while (quiet < quietS) {
    if (Date.now() > deadline) throw new Error(`the controller was still busy after ${limitS} s`);
    await sleep(1000);
    const depth = await metric(c, 'edgebridge_workqueue_depth', 'name="controller"');
    const adds = await metric(c, 'edgebridge_workqueue_adds_total', 'name="controller"');
    quiet = depth === 0 && adds === lastAdds ? quiet + 1 : 0;
    lastAdds = adds;
  }
}

/** RSS, peak RSS and CPU time of a process, from /proc. */
function usage(pid: number | undefined): { rssMb: number; peakMb: number; cpuS: number } {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  // utime and stime, in clock ticks (100 per second on Linux).
  const ticks = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .slice(11, 13)
    .reduce((sum, t) => sum + Number(t), 0);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024, cpuS: ticks / 100 };
}

const fmt = (u: { rssMb: number; peakMb: number; cpuS: number }): string =>
  `RSS ${u.rssMb.toFixed(1)} MB (peak ${u.peakMb.toFixed(1)} MB), CPU ${u.cpuS.toFixed(1)} s`;

let controller: ControllerProcess | undefined;
try {
  const info = await cp.ensure();
  await installCrds(info);
  await installAgentRbac(info);
  await installControllerRbac(info);
  const ns = await testNamespace(info, 'ctl-memory');
  const objects = edgeObjects(info, ns.name);
  const dir = scratchDir('bench-devices');
  const nodes = Array.from({ length: AGENTS }, (_, i) => `mem-${i}`);
  for (const [i, node] of nodes.entries()) {
    await createReadyNode(info, node);
    const file = path.join(dir, `${node}.json`);
    writeDevicesFile(
      file,
      Array.from({ length: DEVICES }, (_, j) => ({
        id: `${node}-dev-${j}`,
        properties: { SIM_INDEX: String(j) },
      })),
    );
    await objects.createDiscovery(`local-${i}`, {
      handler: { name: 'simulated', details: { file } },
      nodeSelector: { matchLabels: { 'kubernetes.io/hostname': node } },
      intervalSeconds: 60,
    });
  }

  // The agents write their slices, then stop (their slices stay).
  const admin = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
  const stop = new AbortController();
  const registries: KubernetesRegistry[] = [];
  const runs = nodes.map((node) => {
    const metrics = new AgentMetrics({ processMetrics: false });
    const registry = new KubernetesRegistry({
      connection: loadKubeConfigFiles([info.kubeconfigs.agent]),
      fieldManager: node,
      log,
    });
    registries.push(registry);
    return new Agent({
      node,
      registry,
      log: log.child({ node }),
      metrics,
      publishers: () => discardingPublisher(metrics.publishDropped),
    }).run(stop.signal);
  });
  const slicesPath = `/apis/edgebridge.io/v1alpha1/namespaces/${ns.name}/deviceslices`;
  for (const t = Date.now(); ;) {
    await sleep(2000);
    const list = await admin.request<KubeList<DeviceSlice>>('GET', slicesPath);
    const listed = (list.items ?? []).reduce((n, s) => n + s.spec.devices.length, 0);
    if (listed === EXPECTED) break;
    if (Date.now() - t > 600_000) throw new Error(`slices list ${listed} of ${EXPECTED} devices`);
  }
  stop.abort();
  await Promise.all(runs);
  await Promise.all(registries.map((r) => r.close()));

  // One controller makes every Device, built and with its flags, as its Deployment runs it.
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
  const convergeArgs =
    process.env.CONVERGE_NODE_ARGS?.split(' ').filter((f) => f !== '') ?? CONTROLLER_NODE_ARGS;
  const started = performance.now();
  controller = await startController(info, {
    extraArgs: ['--log-level', 'info', '--workers', '16'],
    name: 'controller-converge',
    cli: BUILT,
    nodeArgs: convergeArgs,
  });
  const devicesPath = `/apis/edgebridge.io/v1alpha1/namespaces/${ns.name}/devices`;
  for (;;) {
    await sleep(5000);
    const page = await admin.request<KubeList<unknown> & { metadata?: object }>(
      'GET',
      devicesPath,
      { query: { limit: 1 } },
    );
    const remaining = (page.metadata as { remainingItemCount?: number }).remainingItemCount ?? 0;
    if ((page.items?.length ?? 0) + remaining >= EXPECTED) break;
    if (performance.now() - started > 1_800_000) throw new Error('not converged in 30 min');
  }
  await idle(controller, 1800);
  results.push([
    `controller making ${EXPECTED} Devices (built, ${convergeArgs.join(' ')}, --workers 16)`,
    `${((performance.now() - started) / 1000).toFixed(1)} s, ${await writes(controller)} writes, ${fmt(usage(controller.process.pid))}`,
  ]);
  await controller.stop();
  controller = undefined;
  admin.close();

  // A fresh controller per variant: caches listed, every key reconciled once, nothing written.
  const compare = (process.env.COMPARE_CLI ?? '').split(',').filter((c) => c !== '');
  const variants = [
    { name: 'from the sources, default flags', cli: undefined, nodeArgs: [] as string[] },
    { name: 'built, the agent flags (image ENTRYPOINT)', cli: BUILT, nodeArgs: AGENT_NODE_ARGS },
    { name: 'built, the controller flags', cli: BUILT, nodeArgs: CONTROLLER_NODE_ARGS },
    ...(process.env.NODE_ARGS ?? '')
      .split(';')
      .filter((f) => f.trim() !== '')
      .map((f) => ({ name: `built, ${f.trim()}`, cli: BUILT, nodeArgs: f.trim().split(/\s+/) })),
    ...compare.map((cli) => ({
      name: cli,
      cli,
      nodeArgs: cli.endsWith('.js') ? AGENT_NODE_ARGS : [],
    })),
  ];
  for (const [i, v] of process.env.RESTARTS === '0' ? [] : variants.entries()) {
    const snapshot = i === 0 && process.env.HEAP_SNAPSHOT !== undefined;
    const t = performance.now();
    controller = await startController(info, {
      extraArgs: ['--log-level', 'info'],
      name: 'controller-restart',
      nodeArgs: [...v.nodeArgs, ...(snapshot ? ['--heapsnapshot-signal=SIGUSR2'] : [])],
      ...(v.cli !== undefined ? { cli: v.cli } : {}),
    });
    await idle(controller, 900);
    const syncS = (performance.now() - t) / 1000;
    await sleep(10_000);
    const written = await writes(controller);
    results.push([
      `restart with ${EXPECTED} Devices: ${v.name}`,
      `${fmt(usage(controller.process.pid))}; synced and reconciled in ${syncS.toFixed(1)} s, ${written} writes`,
    ]);
    if (snapshot && controller.process.pid !== undefined) {
      process.kill(controller.process.pid, 'SIGUSR2');
      await sleep(30_000);
    }
    await controller.stop();
    controller = undefined;
  }
} finally {
  await controller?.stop();
  await cp.stop();
}
console.log('\nedgebridge controller memory benchmark');
for (const [k, v] of results) console.log(`${k.padEnd(72)} ${v}`);
