// `edgebridge controller` as a child process against the test control plane,
// as test/harness/agent.ts runs agents: a free HTTP port on loopback, debug
// logs in a scratch file, ready once its caches synced (/readyz).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_USERS, type ControlPlaneInfo } from './control-plane.ts';
import { httpGet } from './http-get.ts';
import { applyManifests, kubectlAsAdmin, oncePerControlPlane } from './kubectl.ts';
import { PeerProcess } from './processes.ts';
import { installAgentRbac } from './rbac.ts';
import { scratchDir } from './workdir.ts';

const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const MANIFESTS = path.resolve(import.meta.dirname, '..', '..', 'manifests');

/** The controller's ClusterRole, binding and Lease Role (its ServiceAccount comes with the agent's RBAC). */
export const CONTROLLER_RBAC_FILES = [
  path.join(MANIFESTS, 'controller', 'rbac.yaml'),
  path.join(MANIFESTS, 'rbac', 'controller-leader-election-role.yaml'),
];

export interface ControllerProcess {
  port: number;
  logFile: string;
  process: PeerProcess;
  /** GET on the controller's HTTP endpoint. */
  get(url: string): Promise<{ status: number; body: string }>;
  /** The controller's log lines, parsed. */
  logLines(): Record<string, unknown>[];
  stop(): Promise<void>;
}

export interface StartControllerOptions {
  /** The kubeconfig it runs with; default the controller's own low-privilege identity. */
  kubeconfig?: string;
  /** Default ['--no-leader-elect'] is added unless extraArgs name --leader-elect or --no-leader-elect. */
  extraArgs?: string[];
  /**
   * The one namespace it reconciles (--namespace). Test files share a control
   * plane: a controller that owned every namespace would also write other
   * files' Devices and Events, with other flags.
   */
  namespace?: string;
  /** A name for its log file, when a test runs several. */
  name?: string;
  env?: NodeJS.ProcessEnv;
  /** Wait for /readyz (default true). */
  waitReady?: boolean;
  /** Flags for node itself, before the script (e.g. CONTROLLER_NODE_ARGS). */
  nodeArgs?: string[];
  /** Run this CLI entry point instead of the sources' (e.g. the built dist/src/cli/main.js). */
  cli?: string;
}

/**
 * Applies the agent's RBAC (namespace, ServiceAccounts) and the controller's
 * ClusterRole and binding, then waits until the controller's token may write
 * Devices. Idempotent and safe across test processes.
 */
export const installControllerRbac = oncePerControlPlane(async (info) => {
  await installAgentRbac(info);
  await applyManifests(info, CONTROLLER_RBAC_FILES);
  const deadline = Date.now() + 30000;
  for (;;) {
    const allowed = await kubectlAsAdmin(
      info,
      'auth',
      'can-i',
      'patch',
      'devices.edgebridge.io',
      '--subresource=status',
      '--all-namespaces',
      `--as=${TEST_USERS.controller.name}`,
    ).then(
      () => true,
      (err: unknown) => {
        if ((err as { stdout?: string }).stdout?.trim() === 'no') return false;
        throw err;
      },
    );
    if (allowed) return;
    if (Date.now() > deadline)
      throw new Error('the controller RBAC did not take effect within 30 s');
    await sleep(100);
  }
});

/** Runs `edgebridge controller` from the sources as a child process. */
export async function startController(
  info: ControlPlaneInfo,
  opts: StartControllerOptions = {},
): Promise<ControllerProcess> {
  const name = opts.name ?? 'controller';
  const dir = scratchDir(name);
  const extra = opts.extraArgs ?? [];
  const electionChosen = extra.some((a) => /^--(no-)?leader-elect(=|$)/.test(a));
  const proc = new PeerProcess({
    name,
    command: process.execPath,
    args: [
      ...(opts.nodeArgs ?? []),
      opts.cli ?? CLI,
      'controller',
      '--kubeconfig',
      opts.kubeconfig ?? info.kubeconfigs.controller,
      '--http-port',
      '0',
      '--http-host',
      '127.0.0.1',
      '--log-level',
      'debug',
      ...(electionChosen ? [] : ['--no-leader-elect']),
      ...(opts.namespace !== undefined ? ['--namespace', opts.namespace] : []),
      ...extra,
    ],
    logDir: dir,
    ...(opts.env !== undefined ? { env: { ...process.env, ...opts.env } } : {}),
  });
  const logLines = (): Record<string, unknown>[] =>
    readFileSync(proc.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const port = await proc.waitUntil('the controller to report its HTTP port', () => {
    const line = logLines().find((l) => l.msg === 'http endpoint listening');
    return typeof line?.port === 'number' ? line.port : undefined;
  });
  const controller: ControllerProcess = {
    port,
    logFile: proc.logFile,
    process: proc,
    get: (url) => httpGet(`http://127.0.0.1:${port}${url}`),
    logLines,
    stop: () => proc.stop(),
  };
  if (opts.waitReady !== false) {
    await proc.waitUntil(
      'the controller to be ready (caches synced)',
      async () => ((await controller.get('/readyz')).status === 200 ? true : undefined),
      60000,
    );
  }
  return controller;
}
