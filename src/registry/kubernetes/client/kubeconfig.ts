// kubeconfig files as kubectl reads them: clusters, users and contexts by
// name, the current context, and file references relative to the file that
// made them. Only what an agent or the CLI needs: exec credential plugins
// are run (exec-plugin.ts); auth-provider plugins, removed from kubectl, are
// refused with a message naming what to use instead.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readBoundedFileSync } from '../../../util/bounded-file.ts';
import { checkSchema, SchemaError, type SchemaNode } from '../../../util/schema-check.ts';
import { parseJsonOrYaml } from '../../../util/yaml.ts';
import type { ClusterAuth, ClusterConnection } from './connection.ts';
import { KubeConfigError } from './errors.ts';
import { EXEC_API_VERSIONS, type ExecConfig, type InteractiveMode } from './exec-plugin.ts';

type Fields = Record<string, unknown>;

/** A kubeconfig reduced to its named entries; relative file paths already made absolute. */
export interface KubeConfigDoc {
  clusters: Map<string, Fields>;
  users: Map<string, Fields>;
  contexts: Map<string, Fields>;
  currentContext: string | undefined;
  /** The files it was read from, for messages. */
  files: string[];
}

/** A kubeconfig, and a certificate or key it names. */
const MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024;
const FILE_FIELDS: Record<'cluster' | 'user', string[]> = {
  cluster: ['certificate-authority'],
  user: ['client-certificate', 'client-key', 'tokenFile'],
};
/** The name of a cluster extension handed to exec plugins with provideClusterInfo. */
const EXEC_EXTENSION = 'client.authentication.k8s.io/exec';

/** A user's `exec` stanza (client-go's ExecConfig); unknown fields are ignored, as kubectl does. */
const EXEC_SCHEMA: SchemaNode = {
  type: 'object',
  required: ['command', 'apiVersion'],
  'x-kubernetes-preserve-unknown-fields': true,
  properties: {
    command: { type: 'string', minLength: 1 },
    args: { type: 'array', items: { type: 'string' } },
    env: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'value'],
        properties: { name: { type: 'string', minLength: 1 }, value: { type: 'string' } },
      },
    },
    apiVersion: { type: 'string', enum: EXEC_API_VERSIONS },
    installHint: { type: 'string' },
    interactiveMode: { type: 'string', enum: ['Never', 'IfAvailable', 'Always'] },
    provideClusterInfo: { type: 'boolean' },
  },
};

function isFields(v: unknown): v is Fields {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function str(fields: Fields, key: string): string | undefined {
  const v = fields[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function named(
  doc: Fields,
  list: 'clusters' | 'users' | 'contexts',
  inner: 'cluster' | 'user' | 'context',
  file: string,
): Map<string, Fields> {
  const out = new Map<string, Fields>();
  const entries = doc[list] ?? [];
  if (!Array.isArray(entries)) throw new KubeConfigError(`${file}: ${list} is not a list`);
  for (const entry of entries as unknown[]) {
    if (!isFields(entry) || typeof entry.name !== 'string')
      throw new KubeConfigError(`${file}: an entry of ${list} has no name`);
    const fields = entry[inner] ?? {};
    if (!isFields(fields))
      throw new KubeConfigError(`${file}: ${list} entry "${entry.name}" has no ${inner} object`);
    const copy = { ...fields };
    if (inner !== 'context') {
      for (const key of FILE_FIELDS[inner]) {
        const v = str(copy, key);
        if (v !== undefined) copy[key] = path.resolve(path.dirname(file), v);
      }
    }
    // As kubectl: an exec command with a slash in it is a path, relative to its kubeconfig;
    // a bare name is looked up on PATH.
    if (inner === 'user' && isFields(copy.exec)) {
      const command = str(copy.exec, 'command');
      if (command !== undefined && command.includes('/') && !path.isAbsolute(command))
        copy.exec = { ...copy.exec, command: path.resolve(path.dirname(file), command) };
    }
    // Within one file the first entry of a name wins, as across files.
    if (!out.has(entry.name)) out.set(entry.name, copy);
  }
  return out;
}

/** Parses one kubeconfig's text (YAML or JSON); `file` is where relative paths start. */
export function parseKubeConfig(text: string, file: string): KubeConfigDoc {
  let doc: unknown;
  try {
    doc = parseJsonOrYaml(text, { file });
  } catch (err) {
    // A ParseError says where, never what: a kubeconfig holds tokens.
    throw new KubeConfigError((err as Error).message);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isFields(doc)) throw new KubeConfigError(`${file}: not a kubeconfig object`);
  return {
    clusters: named(doc, 'clusters', 'cluster', file),
    users: named(doc, 'users', 'user', file),
    contexts: named(doc, 'contexts', 'context', file),
    currentContext: str(doc, 'current-context'),
    files: [file],
  };
}

/** Merges kubeconfigs as kubectl merges $KUBECONFIG: for every name and for current-context, the first file to set it wins. */
export function mergeKubeConfigs(docs: KubeConfigDoc[]): KubeConfigDoc {
  const merged: KubeConfigDoc = {
    clusters: new Map(),
    users: new Map(),
    contexts: new Map(),
    currentContext: undefined,
    files: [],
  };
  for (const doc of docs) {
    for (const key of ['clusters', 'users', 'contexts'] as const)
      for (const [name, fields] of doc[key])
        if (!merged[key].has(name)) merged[key].set(name, fields);
    merged.currentContext ??= doc.currentContext;
    merged.files.push(...doc.files);
  }
  return merged;
}

/** Reads one kubeconfig file. */
export function readKubeConfigFile(file: string): KubeConfigDoc {
  let text: string;
  try {
    text = readBoundedFileSync(file, { maxBytes: MAX_KUBECONFIG_BYTES }).toString('utf8');
  } catch (err) {
    throw new KubeConfigError(`cannot read kubeconfig ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseKubeConfig(text, path.resolve(file));
}

/** A `-data` field (base64) if set, else the file field's contents; data wins, as in kubectl. */
function dataOrFile(fields: Fields, key: string, what: string): Buffer | undefined {
  const data = str(fields, `${key}-data`);
  if (data !== undefined) return Buffer.from(data, 'base64');
  const file = str(fields, key);
  if (file === undefined) return undefined;
  try {
    return readBoundedFileSync(file, { maxBytes: MAX_KUBECONFIG_BYTES });
  } catch (err) {
    throw new KubeConfigError(`cannot read ${what} ${key} ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function userAuth(user: Fields, execConfig: () => ExecConfig): ClusterAuth {
  const token = str(user, 'token');
  if (token !== undefined) return { kind: 'token', token };
  const tokenFile = str(user, 'tokenFile');
  if (tokenFile !== undefined) return { kind: 'tokenFile', file: tokenFile };
  const username = str(user, 'username');
  if (username !== undefined)
    return { kind: 'basic', username, password: str(user, 'password') ?? '' };
  if (user.exec !== undefined) return { kind: 'exec', exec: execConfig() };
  return { kind: 'none' };
}

interface ExecStanza {
  command: string;
  args?: string[];
  env?: { name: string; value: string }[];
  apiVersion: ExecConfig['apiVersion'];
  installHint?: string;
  interactiveMode?: InteractiveMode;
  provideClusterInfo?: boolean;
}

/** A user's exec stanza checked, with what KUBERNETES_EXEC_INFO tells the plugin of the cluster. */
function execConfig(
  raw: unknown,
  cluster: Fields,
  ca: Buffer | undefined,
  where: string,
): ExecConfig {
  let exec: ExecStanza;
  try {
    exec = checkSchema(EXEC_SCHEMA, raw, 'exec') as ExecStanza;
  } catch (err) {
    if (err instanceof SchemaError) throw new KubeConfigError(`${where}: ${err.message}`);
    throw err;
  }
  // v1 made the mode a required field; v1beta1 defaults it.
  if (exec.interactiveMode === undefined && exec.apiVersion === 'client.authentication.k8s.io/v1')
    throw new KubeConfigError(
      `${where}: exec.interactiveMode is required for ${exec.apiVersion} (Never, IfAvailable or Always)`,
    );
  return {
    command: exec.command,
    args: exec.args ?? [],
    env: exec.env ?? [],
    apiVersion: exec.apiVersion,
    ...(exec.installHint !== undefined ? { installHint: exec.installHint } : {}),
    interactiveMode: exec.interactiveMode ?? 'IfAvailable',
    ...(exec.provideClusterInfo === true ? { cluster: execClusterInfo(cluster, ca) } : {}),
  };
}

/** The cluster as client-go's ExecCredential spec.cluster spells it. */
function execClusterInfo(cluster: Fields, ca: Buffer | undefined): Record<string, unknown> {
  const extensions = Array.isArray(cluster.extensions) ? (cluster.extensions as unknown[]) : [];
  const ext = extensions.find((e) => isFields(e) && e.name === EXEC_EXTENSION);
  const info: Record<string, unknown> = { server: cluster.server };
  for (const key of ['tls-server-name', 'proxy-url'])
    if (str(cluster, key) !== undefined) info[key] = cluster[key];
  for (const key of ['insecure-skip-tls-verify', 'disable-compression'])
    if (cluster[key] === true) info[key] = true;
  if (ca !== undefined) info['certificate-authority-data'] = ca.toString('base64');
  if (isFields(ext) && ext.extension !== undefined) info.config = ext.extension;
  return info;
}

/** The connection of a context (default: the current context). */
export function resolveKubeConfig(
  doc: KubeConfigDoc,
  opts: { context?: string } = {},
): ClusterConnection {
  const where = doc.files.join(':') || 'kubeconfig';
  const contextName = opts.context ?? doc.currentContext;
  if (contextName === undefined) throw new KubeConfigError(`${where}: no current-context is set`);
  const context = doc.contexts.get(contextName);
  if (context === undefined)
    throw new KubeConfigError(`${where}: context "${contextName}" is not defined`);
  const clusterName = str(context, 'cluster');
  const cluster = clusterName === undefined ? undefined : doc.clusters.get(clusterName);
  if (cluster === undefined)
    throw new KubeConfigError(
      `${where}: context "${contextName}" names cluster "${clusterName ?? ''}", which is not defined`,
    );
  const server = str(cluster, 'server');
  if (server === undefined || !URL.canParse(server))
    throw new KubeConfigError(`${where}: cluster "${clusterName ?? ''}" has no valid server URL`);
  const userName = str(context, 'user');
  const user = userName === undefined ? {} : doc.users.get(userName);
  if (user === undefined)
    throw new KubeConfigError(
      `${where}: context "${contextName}" names user "${userName ?? ''}", which is not defined`,
    );
  const what = `user "${userName ?? ''}"`;
  const cert = dataOrFile(user, 'client-certificate', what);
  const key = dataOrFile(user, 'client-key', what);
  if ((cert === undefined) !== (key === undefined))
    throw new KubeConfigError(`${where}: ${what} has a client certificate or key but not both`);
  const ca = dataOrFile(cluster, 'certificate-authority', `cluster "${clusterName ?? ''}"`);
  const auth = userAuth(user, () => execConfig(user.exec, cluster, ca, `${where}: ${what}`));
  if (auth.kind === 'none' && cert === undefined && user['auth-provider'] !== undefined)
    throw new KubeConfigError(
      `${where}: ${what} gets its credentials from an auth-provider plugin, ` +
        'which edgebridge does not run; give it an exec plugin, a token, a tokenFile or a client certificate and key ' +
        '(e.g. a ServiceAccount token from "kubectl create token")',
    );
  const tlsServerName = str(cluster, 'tls-server-name');
  return {
    server,
    ...(ca !== undefined ? { ca } : {}),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(tlsServerName !== undefined ? { tlsServerName } : {}),
    ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
    auth,
    source: `${where} (context "${contextName}")`,
  };
}

/** $KUBECONFIG's files (colon-separated, merged; missing ones skipped), else ~/.kube/config. */
export function defaultKubeConfigFiles(env: NodeJS.ProcessEnv, home: string): string[] {
  const list = (env.KUBECONFIG ?? '').split(path.delimiter).filter((f) => f !== '');
  return list.length > 0 ? list : [path.join(home, '.kube', 'config')];
}

/** The current context of the given kubeconfig files merged; files that do not exist are skipped, as kubectl does. */
export function loadKubeConfigFiles(files: string[]): ClusterConnection {
  const present = files.filter((f) => existsSync(f));
  if (present.length === 0)
    throw new KubeConfigError(`no kubeconfig found (looked for ${files.join(', ')})`);
  return resolveKubeConfig(mergeKubeConfigs(present.map(readKubeConfigFile)));
}
