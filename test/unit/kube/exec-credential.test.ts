import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExecPluginError } from '../../../src/registry/kubernetes/client/errors.ts';
import {
  parseExecCredential,
  runExecPlugin,
  type ExecConfig,
} from '../../../src/registry/kubernetes/client/exec-plugin.ts';

const V1 = 'client.authentication.k8s.io/v1';
const TOKEN = 'exec-credential-test-token';

const parse = (doc: unknown): ReturnType<typeof parseExecCredential> =>
  parseExecCredential(
    Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc)),
    V1,
    '"plugin"',
  );

function failsWith(doc: unknown, message: RegExp): void {
  assert.throws(
    () => parse(doc),
    (err: unknown) => {
      assert.ok(err instanceof ExecPluginError, `expected an ExecPluginError, got ${String(err)}`);
      assert.equal(err.code, 'EDGEBRIDGE_KUBE_EXEC_PLUGIN');
      assert.match(err.message, message);
      assert.doesNotMatch(err.message, new RegExp(TOKEN));
      return true;
    },
  );
}

describe('ExecCredential output', () => {
  it('takes a token, a certificate and key, and the expiry', () => {
    const at = '2030-01-02T03:04:05Z';
    assert.deepEqual(
      parse({
        apiVersion: V1,
        kind: 'ExecCredential',
        spec: { interactive: false },
        status: { token: TOKEN, expirationTimestamp: at, futureField: true },
      }),
      { token: TOKEN, expiresAt: Date.parse(at) },
    );
    const cert = parse({
      apiVersion: V1,
      kind: 'ExecCredential',
      status: { clientCertificateData: 'CERT', clientKeyData: 'KEY' },
    });
    assert.equal(cert.cert?.toString(), 'CERT');
    assert.equal(cert.key?.toString(), 'KEY');
    assert.equal(cert.token, undefined);
    assert.equal(cert.expiresAt, undefined);
  });

  it('refuses what is not a usable ExecCredential, naming the field and never the token', () => {
    const cred = (status: unknown, extra: Record<string, unknown> = {}): unknown => ({
      apiVersion: V1,
      kind: 'ExecCredential',
      status,
      ...extra,
    });
    failsWith(`{"token": "${TOKEN}"`, /not valid JSON/);
    failsWith('', /it printed nothing/);
    failsWith([TOKEN], /output: must be an object/);
    failsWith(
      cred({ token: TOKEN }, { kind: 'Secret' }),
      /output\.kind: must be one of "ExecCredential"/,
    );
    failsWith(cred({ token: TOKEN }, { apiVersion: 'v1' }), /apiVersion is "v1", not client/);
    failsWith({ apiVersion: V1, kind: 'ExecCredential' }, /no status/);
    failsWith(cred({ token: 5 }), /output\.status\.token: must be a string/);
    failsWith(cred({}), /neither a token nor clientCertificateData and clientKeyData/);
    failsWith(cred({ clientCertificateData: 'CERT' }), /not both/);
    failsWith(
      cred({ token: TOKEN, expirationTimestamp: 'tomorrow' }),
      /expirationTimestamp is not an RFC 3339 time/,
    );
  });
});

describe('running an exec plugin', () => {
  const config = (over: Partial<ExecConfig>): ExecConfig => ({
    command: '/nonexistent/edgebridge-test-plugin',
    args: [],
    env: [],
    apiVersion: V1,
    interactiveMode: 'Never',
    ...over,
  });

  it('a command that is not there: says so, with the install hint', async () => {
    await assert.rejects(
      runExecPlugin(config({ installHint: 'install it with: apt install test-plugin' }), {
        timeoutMs: 5000,
      }),
      (err: unknown) =>
        err instanceof ExecPluginError &&
        /"\/nonexistent\/edgebridge-test-plugin" not found\ninstall it with: apt install test-plugin$/.test(
          err.message,
        ),
    );
  });

  it('interactiveMode Always without a terminal: refused before it runs', async () => {
    await assert.rejects(
      runExecPlugin(config({ command: '/bin/true', interactiveMode: 'Always' }), {
        timeoutMs: 5000,
        stdinIsTty: false,
      }),
      /needs a terminal \(interactiveMode Always\), but standard input is not one/,
    );
  });

  it('an aborted signal: the reason, and the plugin not run', async () => {
    const reason = new Error('stopping');
    await assert.rejects(
      runExecPlugin(config({ command: '/bin/true' }), {
        timeoutMs: 5000,
        signal: AbortSignal.abort(reason),
      }),
      (err: unknown) => err === reason,
    );
  });
});
