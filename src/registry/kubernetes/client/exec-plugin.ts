// Runs a kubeconfig user's exec credential plugin once, as kubectl does
// (client.authentication.k8s.io v1 and v1beta1): the ExecCredential request in
// KUBERNETES_EXEC_INFO, the answer on stdout. Bounded where kubectl is not: a
// deadline, a cap on what it prints, and its stderr kept (capped) for the
// error message, since an agent has no terminal to show it on.
import { spawn } from 'node:child_process';
import { isatty } from 'node:tty';
import { checkSchema, SchemaError, type SchemaNode } from '../../../util/schema-check.ts';
import { ParseError, parseJson } from '../../../util/yaml.ts';
import { clip } from '../../../util/quote.ts';
import { ExecPluginError } from './errors.ts';

export const EXEC_API_VERSIONS = [
  'client.authentication.k8s.io/v1',
  'client.authentication.k8s.io/v1beta1',
] as const;
export type ExecApiVersion = (typeof EXEC_API_VERSIONS)[number];
export type InteractiveMode = 'Never' | 'IfAvailable' | 'Always';

/** A kubeconfig user's `exec` stanza, checked, with the cluster it is for. */
export interface ExecConfig {
  /** A bare name is looked up on PATH; a relative path was resolved against the kubeconfig's folder. */
  command: string;
  args: string[];
  /** Added to this process's environment. */
  env: { name: string; value: string }[];
  apiVersion: ExecApiVersion;
  /** Shown when the command is not found. */
  installHint?: string;
  interactiveMode: InteractiveMode;
  /** Set when provideClusterInfo is true: what KUBERNETES_EXEC_INFO tells of the cluster. */
  cluster?: Record<string, unknown>;
}

/** What a plugin answered; certificate and key are PEM. */
export interface ExecCredentialStatus {
  token?: string;
  cert?: Buffer;
  key?: Buffer;
  /** Epoch ms after which the credential must be fetched again; undefined: until a 401. */
  expiresAt?: number;
}

export interface RunExecOptions {
  /** Kill the plugin and fail after this long. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Whether this process's stdin is a terminal (decides interactive mode). */
  stdinIsTty?: boolean;
}

/** A certificate chain and key are a few kilobytes; anything near this is not an ExecCredential. */
export const MAX_STDOUT_BYTES = 1024 * 1024;
/** How much of the plugin's stderr an error message repeats. */
export const MAX_STDERR_CHARS = 2048;

const STATUS_SCHEMA: SchemaNode = {
  type: 'object',
  required: ['apiVersion', 'kind'],
  'x-kubernetes-preserve-unknown-fields': true,
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string', enum: ['ExecCredential'] },
    status: {
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
      properties: {
        token: { type: 'string' },
        clientCertificateData: { type: 'string' },
        clientKeyData: { type: 'string' },
        expirationTimestamp: { type: 'string' },
      },
    },
  },
};

/** Runs the plugin once and returns its credential; any failure is an ExecPluginError. */
export async function runExecPlugin(
  config: ExecConfig,
  opts: RunExecOptions,
): Promise<ExecCredentialStatus> {
  if (opts.signal?.aborted === true) throw opts.signal.reason as Error;
  const name = JSON.stringify(clip(config.command));
  const interactive = isInteractive(config, opts.stdinIsTty ?? isatty(0));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const { name: k, value } of config.env) env[k] = value;
  env.KUBERNETES_EXEC_INFO = JSON.stringify({
    apiVersion: config.apiVersion,
    kind: 'ExecCredential',
    spec: { interactive, ...(config.cluster !== undefined ? { cluster: config.cluster } : {}) },
  });
  const out = await spawnBounded(config, env, interactive, opts, name);
  return parseExecCredential(out, config.apiVersion, name);
}

function isInteractive(config: ExecConfig, stdinIsTty: boolean): boolean {
  if (config.interactiveMode === 'Never') return false;
  if (config.interactiveMode === 'IfAvailable') return stdinIsTty;
  if (!stdinIsTty)
    throw new ExecPluginError(
      `exec plugin ${JSON.stringify(clip(config.command))} needs a terminal (interactiveMode Always), ` +
        'but standard input is not one',
    );
  return true;
}

/**
 * Spawns the plugin and collects its stdout. Non-interactive, it gets no stdin,
 * its stderr is kept for messages, and it leads a process group of its own so
 * that a timeout kills what it started too (a shell script's children would
 * otherwise hold stdout open). Interactive, it shares this terminal.
 */
function spawnBounded(
  config: ExecConfig,
  env: NodeJS.ProcessEnv,
  interactive: boolean,
  opts: RunExecOptions,
  name: string,
): Promise<Buffer> {
  const { signal } = opts;
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn(config.command, config.args, {
      env,
      stdio: interactive ? ['inherit', 'pipe', 'inherit'] : ['ignore', 'pipe', 'pipe'],
      detached: !interactive,
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = '';
    let done = false;
    const kill = (): void => {
      if (child.pid === undefined) return;
      try {
        // The group even when its leader has exited: what it started may still hold stdout.
        if (!interactive) process.kill(-child.pid, 'SIGKILL');
        else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const finish = (err: Error | undefined, value?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) {
        kill();
        reject(err);
      } else resolve(value ?? Buffer.alloc(0));
    };
    const stderrPart = (): string => {
      const text = stderr.trim();
      return text === '' ? '' : `; its stderr: ${clip(text, MAX_STDERR_CHARS)}`;
    };
    const onAbort = (): void => finish(signal?.reason as Error);
    const timer = setTimeout(
      () =>
        finish(
          new ExecPluginError(
            `exec plugin ${name} did not finish within ${opts.timeoutMs} ms; killed${stderrPart()}`,
          ),
        ),
      opts.timeoutMs,
    );
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > MAX_STDOUT_BYTES) {
        finish(
          new ExecPluginError(
            `exec plugin ${name} printed more than ${MAX_STDOUT_BYTES} bytes; killed`,
          ),
        );
        return;
      }
      stdout.push(chunk);
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      // Only the start is ever shown; the rest is read and dropped so the plugin does not block.
      if (stderr.length <= MAX_STDERR_CHARS) stderr += chunk;
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      const hint = config.installHint === undefined ? '' : `\n${clip(config.installHint, 1024)}`;
      finish(
        new ExecPluginError(
          err.code === 'ENOENT'
            ? `exec plugin ${name} not found${hint}`
            : `exec plugin ${name} could not be started: ${err.message}`,
          { cause: err },
        ),
      );
    });
    // 'close', not 'exit': stdout and stderr have been read to their end.
    child.once('close', (code, sig) => {
      if (code === 0) {
        finish(undefined, Buffer.concat(stdout, stdoutBytes));
        return;
      }
      const how = sig !== null ? `was killed by ${sig}` : `exited with status ${code}`;
      finish(new ExecPluginError(`exec plugin ${name} ${how}${stderrPart()}`));
    });
  });
}

/** The credential in a plugin's stdout. Messages say which field is wrong, never what it holds. */
export function parseExecCredential(
  out: Buffer,
  apiVersion: ExecApiVersion,
  name: string,
): ExecCredentialStatus {
  const garbage = (reason: string): ExecPluginError =>
    new ExecPluginError(`exec plugin ${name} did not print an ExecCredential: ${reason}`);
  if (out.length === 0) throw garbage('it printed nothing');
  let doc: unknown;
  try {
    doc = parseJson(out.toString('utf8'));
    doc = checkSchema(STATUS_SCHEMA, doc, 'output');
  } catch (err) {
    if (err instanceof ParseError || err instanceof SchemaError)
      throw garbage(`${err.message} (${out.length} bytes)`);
    throw err;
  }
  const cred = doc as {
    apiVersion: string;
    status?: {
      token?: string;
      clientCertificateData?: string;
      clientKeyData?: string;
      expirationTimestamp?: string;
    };
  };
  if (cred.apiVersion !== apiVersion)
    throw garbage(
      `its apiVersion is ${JSON.stringify(clip(cred.apiVersion))}, not ${apiVersion} as configured`,
    );
  const status = cred.status;
  if (status === undefined) throw garbage('it has no status');
  const token = status.token !== undefined && status.token !== '' ? status.token : undefined;
  const cert = nonEmpty(status.clientCertificateData);
  const key = nonEmpty(status.clientKeyData);
  if ((cert === undefined) !== (key === undefined))
    throw garbage('status has clientCertificateData or clientKeyData but not both');
  if (token === undefined && cert === undefined)
    throw garbage('status has neither a token nor clientCertificateData and clientKeyData');
  let expiresAt: number | undefined;
  if (status.expirationTimestamp !== undefined && status.expirationTimestamp !== '') {
    expiresAt = Date.parse(status.expirationTimestamp);
    if (Number.isNaN(expiresAt))
      throw garbage('status.expirationTimestamp is not an RFC 3339 time');
  }
  return {
    ...(token !== undefined ? { token } : {}),
    ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
}

function nonEmpty(pem: string | undefined): Buffer | undefined {
  return pem === undefined || pem === '' ? undefined : Buffer.from(pem, 'utf8');
}
