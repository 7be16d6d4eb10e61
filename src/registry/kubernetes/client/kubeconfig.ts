// kubeconfig files as kubectl reads them: clusters, users and contexts by
// name, the current context, and file references relative to the file that
// made them. Only what an agent or the CLI needs; exec and auth-provider
// plugins are refused with a message naming what to use instead.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readBoundedFileSync } from '../../../util/bounded-file.ts';
import { parseJsonOrYaml } from '../../../util/yaml.ts';
import type { ClusterAuth, ClusterConnection } from './connection.ts';
import { KubeConfigError } from './errors.ts';

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

function userAuth(user: Fields): ClusterAuth {
  const token = str(user, 'token');
  if (token !== undefined) return { kind: 'token', token };
  const tokenFile = str(user, 'tokenFile');
  if (tokenFile !== undefined) return { kind: 'tokenFile', file: tokenFile };
  const username = str(user, 'username');
  if (username !== undefined)
    return { kind: 'basic', username, password: str(user, 'password') ?? '' };
  return { kind: 'none' };
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
  const auth = userAuth(user);
  if (
    auth.kind === 'none' &&
    cert === undefined &&
    (user.exec !== undefined || user['auth-provider'] !== undefined)
  )
    throw new KubeConfigError(
      `${where}: ${what} gets its credentials from an ${user.exec !== undefined ? 'exec' : 'auth-provider'} plugin, ` +
        'which edgebridge does not run; give it a token, a tokenFile or a client certificate and key ' +
        '(e.g. a ServiceAccount token from "kubectl create token")',
    );
  const ca = dataOrFile(cluster, 'certificate-authority', `cluster "${clusterName ?? ''}"`);
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
