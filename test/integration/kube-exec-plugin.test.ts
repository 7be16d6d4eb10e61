// kubeconfigs whose user runs an exec credential plugin (as EKS, GKE and AKS
// write them), against the real API server: the plugin (fixtures/exec-plugin.sh)
// prints a ServiceAccount token from the TokenRequest API or a client
// certificate signed by the control plane's CA, fails, prints garbage, or hangs.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ExecPluginError } from '../../src/registry/kubernetes/client/errors.ts';
import { KubeClient } from '../../src/registry/kubernetes/client/kube-client.ts';
import { loadKubeConfigFiles } from '../../src/registry/kubernetes/client/kubeconfig.ts';
import { signClientCert } from '../harness/certs.ts';
import { installCrds } from '../harness/crds.ts';
import { eventually } from '../harness/devices.ts';
import { testNamespace, useControlPlane } from '../harness/kube.ts';
import { lazy, settled } from '../harness/lazy.ts';
import { scratchDir } from '../harness/workdir.ts';

const run = promisify(execFile);
const PLUGIN = path.resolve(import.meta.dirname, 'fixtures/exec-plugin.sh');
const CLI = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const SA = 'exec-plugin-user';
/** Printed by the garbage and flood plugins: no message may repeat it. */
const SECRET = 'plugin-stdout-secret-5f1c';

interface Plugin {
  kubeconfig: string;
  /** How many times the plugin has run. */
  runs(): number;
  /** The KUBERNETES_EXEC_INFO of its last run. */
  info(): { apiVersion: string; spec: { interactive: boolean; cluster?: Record<string, unknown> } };
  pidFile: string;
}

type Setup = Awaited<ReturnType<typeof make>>;

async function make() {
  const info = await useControlPlane();
  const ns = await testNamespace(info, 'exec-plugin');
  const admin = new KubeClient(loadKubeConfigFiles([info.kubeconfigs.admin]));
  await admin.request('POST', `/api/v1/namespaces/${ns.name}/serviceaccounts`, {
    body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SA } },
  });
  const tokenRequest = async (): Promise<string> =>
    (
      await admin.request<{ status: { token: string } }>(
        'POST',
        `/api/v1/namespaces/${ns.name}/serviceaccounts/${SA}/token`,
        {
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: { expirationSeconds: 3600 },
          },
        },
      )
    ).status.token;
  return { info, ns, admin, token: await tokenRequest() };
}

/** A credential as a plugin prints it. */
function credential(
  status: Record<string, string>,
  apiVersion = 'client.authentication.k8s.io/v1',
): string {
  return JSON.stringify({ apiVersion, kind: 'ExecCredential', status });
}

/** A kubeconfig whose user runs the test plugin in `mode`, in a fresh directory. */
function plugin(
  s: Setup,
  mode: 'print' | 'slow' | 'fail' | 'garbage' | 'flood' | 'hang' | 'daemon',
  opts: { out?: string; first?: string; apiVersion?: string } = {},
): Plugin {
  const dir = scratchDir('exec-plugin');
  const f = (name: string): string => path.join(dir, name);
  writeFileSync(f('count'), '');
  if (opts.out !== undefined) writeFileSync(f('out.json'), opts.out, { mode: 0o600 });
  if (opts.first !== undefined) writeFileSync(f('first.json'), opts.first, { mode: 0o600 });
  const env: Record<string, string> = {
    EXEC_TEST_MODE: mode,
    EXEC_TEST_COUNT: f('count'),
    EXEC_TEST_INFO: f('info.json'),
    EXEC_TEST_OUT: f('out.json'),
    EXEC_TEST_PID: f('pid'),
    EXEC_TEST_SECRET: SECRET,
    ...(opts.first !== undefined ? { EXEC_TEST_FIRST: f('first.json') } : {}),
  };
  const kubeconfig = f('kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'test',
          cluster: {
            server: s.info.server,
            'certificate-authority': s.info.caFile,
            extensions: [
              { name: 'client.authentication.k8s.io/exec', extension: { audience: 'edge' } },
            ],
          },
        },
      ],
      users: [
        {
          name: 'test',
          user: {
            exec: {
              apiVersion: opts.apiVersion ?? 'client.authentication.k8s.io/v1',
              command: PLUGIN,
              args: ['--profile', 'edge-test'],
              env: Object.entries(env).map(([name, value]) => ({ name, value })),
              interactiveMode: 'Never',
              provideClusterInfo: true,
              installHint: 'install the test plugin',
            },
          },
        },
      ],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'test' } }],
      'current-context': 'test',
    }),
  );
  return {
    kubeconfig,
    runs: () => readFileSync(f('count'), 'utf8').split('\n').filter(Boolean).length,
    info: () => JSON.parse(readFileSync(f('info.json'), 'utf8')) as ReturnType<Plugin['info']>,
    pidFile: f('pid'),
  };
}

/** Who the API server thinks the client is. */
async function whoami(client: KubeClient): Promise<string> {
  const review = await client.request<{ status: { userInfo: { username: string } } }>(
    'POST',
    '/apis/authentication.k8s.io/v1/selfsubjectreviews',
    { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
  );
  return review.status.userInfo.username;
}

function clientFor(p: Plugin, execTimeoutMs?: number, timeoutMs?: number): KubeClient {
  return new KubeClient(loadKubeConfigFiles([p.kubeconfig]), {
    ...(execTimeoutMs !== undefined ? { execTimeoutMs } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  });
}

async function rejectsWithPluginError(
  p: Plugin,
  message: RegExp,
  execTimeoutMs?: number,
): Promise<ExecPluginError> {
  const client = clientFor(p, execTimeoutMs);
  try {
    const err = await whoami(client).then(
      () => assert.fail('the request succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ExecPluginError, `expected an ExecPluginError, got ${String(err)}`);
    assert.equal(err.code, 'EDGEBRIDGE_KUBE_EXEC_PLUGIN');
    assert.match(err.message, message);
    assert.doesNotMatch(err.message, new RegExp(SECRET));
    return err;
  } finally {
    client.close();
  }
}

/** True if the process is gone or a zombie. */
function dead(pid: number): true | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z') ? true : undefined;
  } catch {
    return true;
  }
}

describe('kubeconfig exec credential plugins against a real API server', () => {
  let started: Promise<Setup> | undefined;
  const setup = lazy(() => (started = make()));
  after(async () => {
    const s = await settled(started);
    if (s === undefined) return;
    s.admin.close();
    await s.ns.remove();
  });

  it('authenticates with the token a plugin prints, runs it once for concurrent requests, keeps it while it has not expired, and tells the plugin the cluster', async () => {
    const s = await setup();
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const p = plugin(s, 'print', {
      out: credential({ token: s.token, expirationTimestamp: future }),
    });
    const client = clientFor(p);
    try {
      // Requests that arrive together share one run of the plugin.
      const users = await Promise.all([1, 2, 3, 4].map(() => whoami(client)));
      assert.deepEqual(new Set(users), new Set([`system:serviceaccount:${s.ns.name}:${SA}`]));
      assert.equal(await whoami(client), `system:serviceaccount:${s.ns.name}:${SA}`);
      assert.equal(p.runs(), 1);
      const sent = p.info();
      assert.equal(sent.apiVersion, 'client.authentication.k8s.io/v1');
      assert.equal(sent.spec.interactive, false);
      assert.equal(sent.spec.cluster?.server, s.info.server);
      assert.deepEqual(sent.spec.cluster?.config, { audience: 'edge' });
      assert.equal(
        sent.spec.cluster?.['certificate-authority-data'],
        readFileSync(s.info.caFile).toString('base64'),
      );
    } finally {
      client.close();
    }
  });

  it('runs the plugin again once its credential has expired (v1beta1)', async () => {
    const s = await setup();
    const beta = 'client.authentication.k8s.io/v1beta1';
    const past = new Date(Date.now() - 1000).toISOString();
    const p = plugin(s, 'print', {
      apiVersion: beta,
      out: credential({ token: s.token, expirationTimestamp: past }, beta),
    });
    const client = clientFor(p);
    try {
      await whoami(client);
      await whoami(client);
      assert.equal(p.runs(), 2);
    } finally {
      client.close();
    }
  });

  it('runs the plugin again when the API server refuses its credential, and sends the request once more', async () => {
    const s = await setup();
    const p = plugin(s, 'print', {
      first: credential({ token: 'revoked-token' }),
      out: credential({ token: s.token }),
    });
    const client = clientFor(p);
    try {
      assert.equal(await whoami(client), `system:serviceaccount:${s.ns.name}:${SA}`);
      assert.equal(p.runs(), 2);
    } finally {
      client.close();
    }
  });

  it("a plugin slower than a request's timeout (a login) does not fail the request", async () => {
    const s = await setup();
    const p = plugin(s, 'slow', { out: credential({ token: s.token }) });
    // The plugin sleeps 3 s; requests may take 1 s.
    const client = clientFor(p, undefined, 1000);
    try {
      assert.equal(await whoami(client), `system:serviceaccount:${s.ns.name}:${SA}`);
    } finally {
      client.close();
    }
  });

  it('authenticates with the client certificate a plugin prints', async () => {
    const s = await setup();
    const { cert, key } = await signClientCert({
      caCert: s.info.caFile,
      // makeControlPlaneCerts keeps the CA's key beside its certificate.
      caKey: path.join(path.dirname(s.info.caFile), 'ca.key'),
      dir: scratchDir('exec-cert'),
      cn: 'exec-cert-user',
    });
    const p = plugin(s, 'print', {
      out: credential({
        clientCertificateData: readFileSync(cert, 'utf8'),
        clientKeyData: readFileSync(key, 'utf8'),
      }),
    });
    const client = clientFor(p);
    try {
      assert.equal(await whoami(client), 'exec-cert-user');
    } finally {
      client.close();
    }
  });

  it('a failing plugin: one clear error with its exit status and stderr', async () => {
    const s = await setup();
    await rejectsWithPluginError(
      plugin(s, 'fail'),
      /exec-plugin\.sh" exited with status 3; its stderr: exec-plugin: no credentials for profile edge-test/,
    );
  });

  it('a plugin that prints garbage or floods stdout: a clear error that does not repeat its output', async () => {
    const s = await setup();
    await rejectsWithPluginError(
      plugin(s, 'garbage'),
      /did not print an ExecCredential: not valid JSON/,
    );
    await rejectsWithPluginError(
      plugin(s, 'print', {
        out: credential({ token: s.token }, 'client.authentication.k8s.io/v1beta1'),
      }),
      /apiVersion is "client.authentication.k8s.io\/v1beta1", not client.authentication.k8s.io\/v1/,
    );
    await rejectsWithPluginError(plugin(s, 'flood'), /printed more than 1048576 bytes; killed/);
  });

  it('a plugin that hangs, or exits leaving a child on its stdout, is killed with what it started, after the timeout', async () => {
    const s = await setup();
    for (const mode of ['hang', 'daemon'] as const) {
      const p = plugin(s, mode);
      await rejectsWithPluginError(p, /did not finish within 1000 ms; killed/, 1000);
      const pid = Number(readFileSync(p.pidFile, 'utf8').trim());
      // The plugin's own child: dead (a zombie once orphaned, as this machine's init does not reap).
      await eventually(
        `the ${mode} plugin's child to be killed`,
        () => Promise.resolve(dead(pid)),
        10_000,
      );
    }
  });

  it("edgebridge devices works with an exec kubeconfig, and shows a failing plugin's error", async () => {
    const s = await setup();
    await installCrds(s.info);
    const good = plugin(s, 'print', { out: credential({ token: s.info.tokens.admin }) });
    const { stdout } = await run(
      process.execPath,
      [CLI, 'devices', '-n', s.ns.name, '-o', 'json'],
      {
        env: { ...process.env, KUBECONFIG: good.kubeconfig },
      },
    );
    assert.deepEqual((JSON.parse(stdout) as { items: unknown[] }).items, []);
    assert.equal(good.runs(), 1);
    const bad = plugin(s, 'fail');
    const err = await run(process.execPath, [CLI, 'devices', '-n', s.ns.name], {
      env: { ...process.env, KUBECONFIG: bad.kubeconfig },
    }).then(
      () => assert.fail('edgebridge devices succeeded'),
      (e: unknown) => e as { code: number; stderr: string },
    );
    assert.equal(err.code, 1);
    assert.match(err.stderr, /no credentials for profile edge-test/);
  });
});
