import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { makeControlPlaneCerts, type ControlPlaneCerts } from './certs.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { freePort } from './ports.ts';
import { httpGet } from './http-get.ts';
import { MissingPeerError, PeerProcess, type PeerProcessOptions } from './processes.ts';
import { canary } from './canaries.ts';

/** The Kubernetes release the tests run against; scripts/build-control-plane.sh builds it. */
export const K8S_VERSION = process.env.K8S_VERSION ?? 'v1.36.3';

/** Identities in the static token file. Service account names match the manifests' RBAC subjects. */
export const TEST_USERS = {
  admin: { name: 'edgebridge-test-admin', groups: ['system:masters'] },
  agent: {
    name: 'system:serviceaccount:edgebridge-system:edgebridge-agent',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:edgebridge-system'],
  },
  controller: {
    name: 'system:serviceaccount:edgebridge-system:edgebridge-controller',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:edgebridge-system'],
  },
} as const;
export type TestUser = keyof typeof TEST_USERS;

/** What a test needs to reach the control plane; plain data so that it can cross processes. */
export interface ControlPlaneInfo {
  version: string;
  server: string;
  caFile: string;
  tokens: Record<TestUser, string>;
  kubeconfigs: Record<TestUser, string>;
  /** kubectl of the same release, for tests that query the way a user would. */
  kubectl: string;
  controllerManager: boolean;
  scheduler: boolean;
}

export interface ControlPlaneComponents {
  /** kube-controller-manager: garbage collection of owned objects, namespace deletion, service account tokens. */
  controllerManager?: boolean;
  /** kube-scheduler: places pods and DRA claims on Node objects that tests create. */
  scheduler?: boolean;
}

function binDir(): string {
  const cache = process.env.EDGEBRIDGE_CACHE ?? path.join(homedir(), '.cache', 'edgebridge');
  return path.join(cache, `k8s-${K8S_VERSION}`, 'bin');
}

function binary(name: string): string {
  const file = path.join(binDir(), name);
  if (!existsSync(file)) {
    throw new MissingPeerError(
      file,
      'build it with scripts/build-control-plane.sh (scripts/test.sh does this)',
    );
  }
  return file;
}

/**
 * etcd + kube-apiserver on loopback with RBAC and a static token file, and on
 * request kube-controller-manager and kube-scheduler. Every process is a direct
 * child, stopped by PID in stop().
 */
export class ControlPlane {
  readonly dir: string;
  #certs: ControlPlaneCerts | undefined;
  #tokens: Record<TestUser, string> | undefined;
  #apiserver: PeerProcess | undefined;
  #controllerManager: PeerProcess | undefined;
  #scheduler: PeerProcess | undefined;
  // Promises, not processes: two test files asking at once must share one start.
  #startingControllerManager: Promise<PeerProcess> | undefined;
  #startingScheduler: Promise<PeerProcess> | undefined;
  /** Every process launched, including any whose start failed; stop() stops them all. */
  readonly #launched: PeerProcess[] = [];
  #apiserverPort = 0;
  #etcdUrl = '';
  #starting: Promise<void> | undefined;

  readonly #apiServerArgs: readonly string[];

  /** `apiServerArgs`: more kube-apiserver flags, e.g. a --runtime-config that turns an API group off. */
  constructor(dir: string, opts: { apiServerArgs?: readonly string[] } = {}) {
    this.dir = dir;
    this.#apiServerArgs = opts.apiServerArgs ?? [];
  }

  get info(): ControlPlaneInfo {
    if (this.#tokens === undefined || this.#certs === undefined)
      throw new Error('control plane not started');
    const kubeconfigs = Object.fromEntries(
      Object.keys(TEST_USERS).map((u) => [u, path.join(this.dir, `${u}.kubeconfig`)]),
    ) as Record<TestUser, string>;
    return {
      version: K8S_VERSION,
      server: `https://127.0.0.1:${this.#apiserverPort}`,
      caFile: this.#certs.caCert,
      tokens: this.#tokens,
      kubeconfigs,
      kubectl: path.join(binDir(), 'kubectl'),
      controllerManager: this.#controllerManager !== undefined && !this.#controllerManager.exited,
      scheduler: this.#scheduler !== undefined && !this.#scheduler.exited,
    };
  }

  /** Starts etcd and the API server (once) and the requested components; resolves when all are ready. */
  async ensure(components: ControlPlaneComponents = {}): Promise<ControlPlaneInfo> {
    this.#starting ??= this.#startCore();
    await this.#starting;
    if (components.controllerManager === true) {
      this.#startingControllerManager ??= this.#startControllerManager();
      this.#controllerManager = await this.#startingControllerManager;
    }
    if (components.scheduler === true) {
      this.#startingScheduler ??= this.#startScheduler();
      this.#scheduler = await this.#startingScheduler;
    }
    return this.info;
  }

  /** Stops the API server only (etcd keeps its data), to test clients riding out an outage. */
  async stopApiServer(): Promise<void> {
    await this.#apiserver?.stop();
  }

  /** Starts the API server again on the same port after stopApiServer(). */
  async startApiServer(): Promise<void> {
    if (this.#apiserver !== undefined && !this.#apiserver.exited) return;
    this.#apiserver = await this.#launchApiServer();
  }

  /** Stops every process this control plane started, newest first. Idempotent. */
  async stop(): Promise<void> {
    for (const p of [...this.#launched].reverse()) await p.stop();
  }

  async #startCore(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    binary('kube-apiserver');
    this.#certs = await makeControlPlaneCerts(this.dir);
    const tokens = Object.fromEntries(
      Object.keys(TEST_USERS).map((u) => [u, canary(`kube-token-${u}`)]),
    );
    this.#tokens = tokens as Record<TestUser, string>;
    writeFileSync(
      path.join(this.dir, 'tokens.csv'),
      Object.entries(TEST_USERS)
        .map(
          ([key, user]) =>
            `${tokens[key] ?? ''},${user.name},uid-${key},"${user.groups.join(',')}"`,
        )
        .join('\n') + '\n',
      { mode: 0o600 },
    );
    await this.#startEtcd();
    this.#apiserverPort = await freePort();
    this.#apiserver = await this.#launchApiServer();
    const server = `https://127.0.0.1:${this.#apiserverPort}`;
    for (const [key, user] of Object.entries(TEST_USERS)) {
      writeKubeconfig(path.join(this.dir, `${key}.kubeconfig`), {
        server,
        caFile: this.#certs.caCert,
        user: user.name,
        token: tokens[key] ?? '',
      });
    }
  }

  async #startEtcd(): Promise<PeerProcess> {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    this.#etcdUrl = client;
    const etcd = this.#launch({
      name: 'etcd',
      command: binary('etcd'),
      args: [
        '--name=edgebridge-test',
        `--data-dir=${path.join(this.dir, 'etcd')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=edgebridge-test=${peer}`,
        // Test data is disposable; fsync would dominate the suite's run time.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      logDir: this.dir,
    });
    await etcd.waitUntil('etcd /health', async () => {
      const res = await httpGet(`${client}/health`);
      return res.status === 200 && res.body.includes('"true"') ? true : undefined;
    });
    return etcd;
  }

  async #launchApiServer(): Promise<PeerProcess> {
    const certs = this.#requireCerts();
    const apiserver = this.#launch({
      name: 'kube-apiserver',
      command: binary('kube-apiserver'),
      args: [
        `--etcd-servers=${this.#etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${this.#apiserverPort}`,
        `--cert-dir=${path.join(this.dir, 'apiserver-certs')}`,
        `--tls-cert-file=${certs.servingCert}`,
        `--tls-private-key-file=${certs.servingKey}`,
        `--client-ca-file=${certs.caCert}`,
        `--token-auth-file=${path.join(this.dir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        '--anonymous-auth=false',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${certs.serviceAccountPub}`,
        `--service-account-signing-key-file=${certs.serviceAccountKey}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        // Loopback cannot be published as the kubernetes Service's endpoint.
        '--endpoint-reconciler-type=none',
        '--allow-privileged=true',
        // As hardened clusters run: an owner reference that blocks its owner's
        // deletion needs the right to update the owner's finalizers.
        '--enable-admission-plugins=OwnerReferencesPermissionEnforcement',
        '--v=1',
        ...this.#apiServerArgs,
      ],
      logDir: this.dir,
    });
    const ca = readFileSync(certs.caCert);
    const token = this.#tokens?.admin;
    await apiserver.waitUntil(
      'kube-apiserver /readyz',
      async () => {
        const res = await httpGet(`https://127.0.0.1:${this.#apiserverPort}/readyz`, {
          ca,
          ...(token !== undefined ? { token } : {}),
        });
        return res.status === 200 ? true : undefined;
      },
      90000,
    );
    return apiserver;
  }

  async #startControllerManager(): Promise<PeerProcess> {
    const certs = this.#requireCerts();
    return this.#startComponent('kube-controller-manager', 'kcm-certs', [
      `--service-account-private-key-file=${certs.serviceAccountKey}`,
      `--root-ca-file=${certs.caCert}`,
      '--use-service-account-credentials=false',
      // No kubelet runs here: the node lifecycle controller would taint every
      // test Node unreachable and evict what the scheduler placed.
      '--controllers=*,-node-lifecycle-controller',
    ]);
  }

  async #startScheduler(): Promise<PeerProcess> {
    return this.#startComponent('kube-scheduler', 'scheduler-certs', []);
  }

  /** A controller-manager or scheduler as admin on loopback; resolves once /healthz answers. */
  async #startComponent(name: string, certDir: string, args: string[]): Promise<PeerProcess> {
    const port = await freePort();
    const kubeconfig = path.join(this.dir, 'admin.kubeconfig');
    const component = this.#launch({
      name,
      command: binary(name),
      args: [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${path.join(this.dir, certDir)}`,
        '--leader-elect=false',
        '--v=1',
        ...args,
      ],
      logDir: this.dir,
    });
    await component.waitUntil(
      `${name} /healthz`,
      async () => {
        const res = await httpGet(`https://127.0.0.1:${port}/healthz`, { insecure: true });
        return res.status === 200 ? true : undefined;
      },
      60000,
    );
    return component;
  }

  #launch(opts: PeerProcessOptions): PeerProcess {
    const p = new PeerProcess(opts);
    this.#launched.push(p);
    return p;
  }

  #requireCerts(): ControlPlaneCerts {
    if (this.#certs === undefined) throw new Error('control plane certificates not made yet');
    return this.#certs;
  }
}
