import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { KubeConfigError } from '../../../src/registry/kubernetes/client/errors.ts';
import {
  inCluster,
  inClusterConnection,
} from '../../../src/registry/kubernetes/client/in-cluster.ts';
import {
  defaultKubeConfigFiles,
  loadKubeConfigFiles,
  readKubeConfigFile,
  resolveKubeConfig,
} from '../../../src/registry/kubernetes/client/kubeconfig.ts';
import { TokenFile } from '../../../src/registry/kubernetes/client/token-file.ts';
import { scratchDir } from '../../harness/workdir.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function kubeconfig(opts: {
  cluster?: Record<string, unknown>;
  user?: Record<string, unknown>;
  current?: string;
  name?: string;
}): Record<string, unknown> {
  const name = opts.name ?? 'test';
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: 'https://127.0.0.1:6443', ...opts.cluster } }],
    users: [{ name, user: opts.user ?? { token: 'abc' } }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    ...(opts.current !== undefined ? { 'current-context': opts.current } : {}),
  };
}

function write(dir: string, file: string, content: unknown): string {
  const p = path.join(dir, file);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, typeof content === 'string' ? content : stringify(content));
  return p;
}

function failsWith(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof KubeConfigError, `expected a KubeConfigError, got ${String(err)}`);
    assert.equal(err.code, 'EDGEBRIDGE_KUBECONFIG');
    assert.match(err.message, message);
    return true;
  });
}

describe('kubeconfig resolution', () => {
  it('takes server, CA data, TLS server name and token of the current context', () => {
    const dir = scratchDir('kubeconfig');
    const file = write(
      dir,
      'config',
      kubeconfig({
        current: 'test',
        cluster: { 'certificate-authority-data': b64('CA-PEM'), 'tls-server-name': 'api.local' },
      }),
    );
    const c = resolveKubeConfig(readKubeConfigFile(file));
    assert.equal(c.server, 'https://127.0.0.1:6443');
    assert.equal(c.ca?.toString(), 'CA-PEM');
    assert.equal(c.tlsServerName, 'api.local');
    assert.equal(c.insecureSkipTlsVerify, false);
    assert.deepEqual(c.auth, { kind: 'token', token: 'abc' });
  });

  it('reads file fields relative to the kubeconfig, and prefers -data fields over files', () => {
    const dir = scratchDir('kubeconfig');
    write(dir, 'sub/ca.crt', 'CA-FROM-FILE');
    write(dir, 'sub/client.crt', 'CERT-FROM-FILE');
    write(dir, 'sub/client.key', 'KEY-FROM-FILE');
    const fromFiles = write(
      dir,
      'sub/files.yaml',
      kubeconfig({
        current: 'test',
        cluster: { 'certificate-authority': 'ca.crt' },
        user: { 'client-certificate': 'client.crt', 'client-key': 'client.key' },
      }),
    );
    const c = resolveKubeConfig(readKubeConfigFile(fromFiles));
    assert.equal(c.ca?.toString(), 'CA-FROM-FILE');
    assert.equal(c.cert?.toString(), 'CERT-FROM-FILE');
    assert.equal(c.key?.toString(), 'KEY-FROM-FILE');
    assert.deepEqual(c.auth, { kind: 'none' });

    const both = write(
      dir,
      'sub/both.yaml',
      kubeconfig({
        current: 'test',
        cluster: {
          'certificate-authority': 'ca.crt',
          'certificate-authority-data': b64('CA-DATA'),
        },
        user: {
          'client-certificate': 'client.crt',
          'client-certificate-data': b64('CERT-DATA'),
          'client-key': 'missing.key',
          'client-key-data': b64('KEY-DATA'),
        },
      }),
    );
    const d = resolveKubeConfig(readKubeConfigFile(both));
    assert.equal(d.ca?.toString(), 'CA-DATA');
    assert.equal(d.cert?.toString(), 'CERT-DATA');
    assert.equal(
      d.key?.toString(),
      'KEY-DATA',
      'a missing key file is not read when data is given',
    );
  });

  it('names the field and file it cannot read', () => {
    const dir = scratchDir('kubeconfig');
    const file = write(
      dir,
      'config',
      kubeconfig({ current: 'test', cluster: { 'certificate-authority': 'nope.crt' } }),
    );
    failsWith(
      () => resolveKubeConfig(readKubeConfigFile(file)),
      /certificate-authority .*nope\.crt/,
    );
  });

  it('supports tokenFile, username/password and insecure-skip-tls-verify', () => {
    const dir = scratchDir('kubeconfig');
    const tokenFile = write(
      dir,
      'a.yaml',
      kubeconfig({ current: 'test', user: { tokenFile: 'tok' } }),
    );
    assert.deepEqual(resolveKubeConfig(readKubeConfigFile(tokenFile)).auth, {
      kind: 'tokenFile',
      file: path.join(dir, 'tok'),
    });
    const basic = write(
      dir,
      'b.yaml',
      kubeconfig({
        current: 'test',
        cluster: { 'insecure-skip-tls-verify': true },
        user: { username: 'u', password: 'p' },
      }),
    );
    const c = resolveKubeConfig(readKubeConfigFile(basic));
    assert.deepEqual(c.auth, { kind: 'basic', username: 'u', password: 'p' });
    assert.equal(c.insecureSkipTlsVerify, true);
  });

  it('reads an exec plugin: a relative command against its kubeconfig, cluster info on request', () => {
    const dir = scratchDir('kubeconfig');
    const exec = {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: './bin/get-token',
      args: ['--region', 'eu'],
      env: [{ name: 'AWS_PROFILE', value: 'edge' }],
      interactiveMode: 'Never',
      provideClusterInfo: true,
      someFutureField: 1,
    };
    const file = write(
      dir,
      'sub/config',
      kubeconfig({
        current: 'test',
        cluster: {
          'certificate-authority-data': b64('CA'),
          extensions: [{ name: 'client.authentication.k8s.io/exec', extension: { a: 1 } }],
        },
        user: { exec },
      }),
    );
    assert.deepEqual(resolveKubeConfig(readKubeConfigFile(file)).auth, {
      kind: 'exec',
      exec: {
        command: path.join(dir, 'sub/bin/get-token'),
        args: ['--region', 'eu'],
        env: [{ name: 'AWS_PROFILE', value: 'edge' }],
        apiVersion: 'client.authentication.k8s.io/v1',
        interactiveMode: 'Never',
        cluster: {
          server: 'https://127.0.0.1:6443',
          'certificate-authority-data': b64('CA'),
          config: { a: 1 },
        },
      },
    });
    const bare = write(
      dir,
      'bare',
      kubeconfig({
        current: 'test',
        user: { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'aws' } },
      }),
    );
    const auth = resolveKubeConfig(readKubeConfigFile(bare)).auth;
    assert.ok(auth.kind === 'exec');
    assert.equal(auth.exec.command, 'aws');
    assert.equal(auth.exec.interactiveMode, 'IfAvailable');
    assert.equal(auth.exec.cluster, undefined);
  });

  it('explains an exec stanza it cannot run, naming the field', () => {
    const dir = scratchDir('kubeconfig');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ command: 'aws' }, /user "test": exec\.apiVersion: is required/],
      [
        { apiVersion: 'client.authentication.k8s.io/v1alpha1', command: 'aws' },
        /exec\.apiVersion: must be one of/,
      ],
      [
        { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' },
        /exec\.interactiveMode is required for client\.authentication\.k8s\.io\/v1/,
      ],
      [
        {
          apiVersion: 'client.authentication.k8s.io/v1beta1',
          command: 'aws',
          env: [{ name: 'A' }],
        },
        /exec\.env\[0\]\.value: is required/,
      ],
    ];
    for (const [exec, message] of cases) {
      const file = write(dir, 'config', kubeconfig({ current: 'test', user: { exec } }));
      failsWith(() => resolveKubeConfig(readKubeConfigFile(file)), message);
    }
  });

  it('refuses auth-provider plugins with a message naming what to use instead', () => {
    const dir = scratchDir('kubeconfig');
    const file = write(
      dir,
      'config',
      kubeconfig({ current: 'test', user: { 'auth-provider': { name: 'gcp' } } }),
    );
    failsWith(
      () => resolveKubeConfig(readKubeConfigFile(file)),
      /auth-provider plugin.*exec plugin, a token/,
    );
  });

  it('explains a missing current-context, context, cluster or half a client certificate', () => {
    const dir = scratchDir('kubeconfig');
    failsWith(
      () => resolveKubeConfig(readKubeConfigFile(write(dir, 'a', kubeconfig({})))),
      /no current-context/,
    );
    failsWith(
      () => resolveKubeConfig(readKubeConfigFile(write(dir, 'b', kubeconfig({ current: 'x' })))),
      /context "x" is not defined/,
    );
    failsWith(
      () =>
        resolveKubeConfig(
          readKubeConfigFile(
            write(dir, 'c', kubeconfig({ current: 'test', user: { 'client-key-data': b64('k') } })),
          ),
        ),
      /client certificate or key but not both/,
    );
    failsWith(() => readKubeConfigFile(write(dir, 'd', 'clusters: [')), /not valid YAML at line 1/);
  });

  it('merges $KUBECONFIG files: the first to set a name or current-context wins; missing files are skipped', () => {
    const dir = scratchDir('kubeconfig');
    const first = write(dir, 'one', {
      clusters: [{ name: 'c', cluster: { server: 'https://first:1' } }],
      users: [],
      contexts: [],
    });
    const second = write(dir, 'two', {
      ...kubeconfig({ name: 'c', current: 'c', cluster: { server: 'https://second:2' } }),
    });
    const files = defaultKubeConfigFiles(
      { KUBECONFIG: [path.join(dir, 'missing'), first, second].join(path.delimiter) },
      '/home/nobody',
    );
    assert.equal(files.length, 3);
    const c = loadKubeConfigFiles(files);
    assert.equal(c.server, 'https://first:1', 'the first file defines cluster "c"');
    assert.deepEqual(c.auth, { kind: 'token', token: 'abc' }, 'the user comes from the second');
    assert.deepEqual(defaultKubeConfigFiles({}, '/home/u'), ['/home/u/.kube/config']);
    failsWith(() => loadKubeConfigFiles([path.join(dir, 'missing')]), /no kubeconfig found/);
  });
});

describe('in-cluster config', () => {
  it('uses the service host and port, the mounted CA and the token file', () => {
    const dir = scratchDir('serviceaccount');
    write(dir, 'ca.crt', 'CLUSTER-CA');
    write(dir, 'token', 'tok-1\n');
    const env = { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' };
    assert.equal(inCluster(env, dir), true);
    assert.equal(inCluster({}, dir), false);
    const c = inClusterConnection(env, dir);
    assert.equal(c.server, 'https://[fd00::1]:443');
    assert.equal(c.ca?.toString(), 'CLUSTER-CA');
    assert.deepEqual(c.auth, { kind: 'tokenFile', file: path.join(dir, 'token') });
    failsWith(() => inClusterConnection({ KUBERNETES_SERVICE_HOST: 'x' }, dir), /SERVICE_PORT/);
  });

  it('reads a rotated token file again', () => {
    const dir = scratchDir('serviceaccount');
    const file = write(dir, 'token', 'tok-1\n');
    const token = new TokenFile(file);
    assert.equal(token.read(), 'tok-1');
    writeFileSync(file, 'tok-2\n');
    // Same size: make sure the modification time differs, as a rotation would.
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    assert.equal(token.read(), 'tok-2');
    writeFileSync(file, '');
    failsWith(() => token.read(), /is empty/);
  });
});
