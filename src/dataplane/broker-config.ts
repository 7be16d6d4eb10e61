// The node broker's configuration file (--broker-config): who may connect and
// which devices they may use. Parsed strictly: an unknown key or a bad value is
// one BrokerConfigError naming where it is, so a typo cannot widen access.
import { readBoundedFile } from '../util/bounded-file.ts';
import { parseJsonOrYaml } from '../util/yaml.ts';
import type { LabelSelector } from '../api/types.ts';
import { labelSelectorRequirements } from '../registry/selectors.ts';
import type { ValueRef } from '../registry/registry.ts';
import type { DeviceGrant } from './access.ts';
import { BrokerConfigError } from './errors.ts';

/** Where a password comes from: a Secret or ConfigMap key (through the registry), or a file. */
export type PasswordSource = { ref: ValueRef } | { file: string };

export interface BrokerUser {
  name: string;
  password: PasswordSource;
  grants: DeviceGrant[];
}

/** Grants for a pod's ServiceAccount (name undefined: every ServiceAccount of the namespace). */
export interface ServiceAccountGrant {
  namespace: string;
  name: string | undefined;
  grants: DeviceGrant[];
}

export interface BrokerConfig {
  /** Undefined: anonymous clients are refused. */
  anonymous: { grants: DeviceGrant[] } | undefined;
  /** The largest MQTT packet a client may send; larger ones close its connection. */
  maxPacketBytes: number;
  tls: { certFile: string; keyFile: string; clientCaFile?: string } | undefined;
  users: BrokerUser[];
  serviceAccounts: {
    /** TokenReview audiences a pod's token must carry. */
    audiences: string[];
    /** How long a reviewed token is trusted without asking the API server again. */
    cacheSeconds: number;
    grants: ServiceAccountGrant[];
  };
}

export const DEFAULT_MAX_PACKET_BYTES = 1024 * 1024;
export const DEFAULT_AUDIENCE = 'edgebridge';
/** The username that says "the password is a ServiceAccount token". */
export const SERVICE_ACCOUNT_USERNAME = 'serviceaccount';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The configuration without a file: nobody but the agent itself may use the broker. */
export function defaultBrokerConfig(): BrokerConfig {
  return {
    anonymous: undefined,
    maxPacketBytes: DEFAULT_MAX_PACKET_BYTES,
    tls: undefined,
    users: [],
    serviceAccounts: { audiences: [DEFAULT_AUDIENCE], cacheSeconds: 60, grants: [] },
  };
}

export async function loadBrokerConfig(file: string): Promise<BrokerConfig> {
  let text: string;
  try {
    text = (await readBoundedFile(file, { maxBytes: MAX_CONFIG_BYTES })).toString('utf8');
  } catch (err) {
    throw new BrokerConfigError(`cannot read broker config ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseJsonOrYaml(text, { maxAliasCount: 100, file });
  } catch (err) {
    // A ParseError says where, never what: the line may hold a password.
    throw new BrokerConfigError(`broker config ${(err as Error).message}`);
  }
  try {
    return parseBrokerConfig(doc ?? {});
  } catch (err) {
    if (err instanceof BrokerConfigError)
      throw new BrokerConfigError(`broker config ${file}: ${err.message}`);
    throw err;
  }
}

type Obj = Record<string, unknown>;

function fail(where: string, problem: string): never {
  throw new BrokerConfigError(`${where}: ${problem}`);
}

function object(v: unknown, where: string, keys: readonly string[]): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(where, 'must be a map');
  for (const k of Object.keys(v)) {
    if (!keys.includes(k))
      fail(where, `unknown key '${k.slice(0, 64)}' (known: ${keys.join(', ')})`);
  }
  return v as Obj;
}

function list(v: unknown, where: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(where, 'must be a list');
  return v;
}

function string(v: unknown, where: string, pattern?: RegExp): string {
  if (typeof v !== 'string' || v === '') fail(where, 'must be a non-empty string');
  if (pattern !== undefined && !pattern.test(v)) fail(where, `'${v.slice(0, 64)}' is not valid`);
  return v;
}

function path(v: unknown, where: string): string {
  const p = string(v, where);
  if (!p.startsWith('/')) fail(where, 'must be an absolute path');
  return p;
}

export function parseBrokerConfig(doc: unknown): BrokerConfig {
  const top = object(doc, 'config', [
    'anonymous',
    'maxPacketBytes',
    'tls',
    'users',
    'serviceAccounts',
  ]);
  const config = defaultBrokerConfig();
  if (top.anonymous !== undefined) {
    const a = object(top.anonymous, 'anonymous', ['devices']);
    config.anonymous = { grants: grants(a.devices, 'anonymous.devices', undefined) };
  }
  if (top.maxPacketBytes !== undefined) {
    const n = top.maxPacketBytes;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1024 || n > 256 * 1024 * 1024)
      fail('maxPacketBytes', 'must be an integer from 1024 to 268435456');
    config.maxPacketBytes = n;
  }
  if (top.tls !== undefined) {
    const t = object(top.tls, 'tls', ['certFile', 'keyFile', 'clientCaFile']);
    config.tls = {
      certFile: path(t.certFile, 'tls.certFile'),
      keyFile: path(t.keyFile, 'tls.keyFile'),
      ...(t.clientCaFile !== undefined
        ? { clientCaFile: path(t.clientCaFile, 'tls.clientCaFile') }
        : {}),
    };
  }
  const names = new Set<string>();
  config.users = list(top.users, 'users').map((u, i) => {
    const where = `users[${i}]`;
    const o = object(u, where, ['name', 'passwordFrom', 'devices']);
    const name = string(o.name, `${where}.name`, USER_NAME);
    if (name === SERVICE_ACCOUNT_USERNAME)
      fail(`${where}.name`, `'${SERVICE_ACCOUNT_USERNAME}' is reserved for ServiceAccount tokens`);
    if (names.has(name)) fail(`${where}.name`, `duplicate user '${name}'`);
    names.add(name);
    return {
      name,
      password: passwordSource(o.passwordFrom, `${where}.passwordFrom`),
      grants: grants(o.devices, `${where}.devices`, undefined),
    };
  });
  if (top.serviceAccounts !== undefined) {
    const s = object(top.serviceAccounts, 'serviceAccounts', [
      'audiences',
      'cacheSeconds',
      'grants',
    ]);
    if (s.audiences !== undefined) {
      const audiences = list(s.audiences, 'serviceAccounts.audiences').map((a, i) =>
        string(a, `serviceAccounts.audiences[${i}]`),
      );
      if (audiences.length === 0) fail('serviceAccounts.audiences', 'must name an audience');
      config.serviceAccounts.audiences = audiences;
    }
    if (s.cacheSeconds !== undefined) {
      const n = s.cacheSeconds;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 3600)
        fail('serviceAccounts.cacheSeconds', 'must be an integer from 0 to 3600');
      config.serviceAccounts.cacheSeconds = n;
    }
    config.serviceAccounts.grants = list(s.grants, 'serviceAccounts.grants').map((g, i) => {
      const where = `serviceAccounts.grants[${i}]`;
      const o = object(g, where, ['namespace', 'name', 'devices']);
      const namespace = string(o.namespace, `${where}.namespace`, DNS_LABEL);
      return {
        namespace,
        name: o.name === undefined ? undefined : string(o.name, `${where}.name`, DNS_SUBDOMAIN),
        grants: grants(o.devices, `${where}.devices`, namespace),
      };
    });
  }
  return config;
}

function passwordSource(v: unknown, where: string): PasswordSource {
  const o = object(v, where, ['secretKeyRef', 'configMapKeyRef', 'file']);
  const given = ['secretKeyRef', 'configMapKeyRef', 'file'].filter((k) => o[k] !== undefined);
  if (given.length !== 1) fail(where, 'needs exactly one of secretKeyRef, configMapKeyRef, file');
  if (o.file !== undefined) return { file: path(o.file, `${where}.file`) };
  const kind = o.secretKeyRef !== undefined ? 'Secret' : 'ConfigMap';
  const key = kind === 'Secret' ? 'secretKeyRef' : 'configMapKeyRef';
  const r = object(o[key], `${where}.${key}`, ['namespace', 'name', 'key']);
  return {
    ref: {
      kind,
      namespace: string(r.namespace, `${where}.${key}.namespace`, DNS_LABEL),
      name: string(r.name, `${where}.${key}.name`, DNS_SUBDOMAIN),
      key: string(r.key, `${where}.${key}.key`, /^[-._a-zA-Z0-9]{1,253}$/),
    },
  };
}

/** Device grants; `defaultNamespace` fills in a missing namespace (a ServiceAccount's own). */
function grants(v: unknown, where: string, defaultNamespace: string | undefined): DeviceGrant[] {
  return list(v, where).map((g, i) => {
    const at = `${where}[${i}]`;
    const o = object(g, at, ['namespace', 'names', 'selector', 'publish']);
    const namespace =
      o.namespace === undefined && defaultNamespace !== undefined
        ? defaultNamespace
        : string(o.namespace, `${at}.namespace`, DNS_LABEL);
    const grant: DeviceGrant = { namespace, publish: false };
    if (o.names !== undefined) {
      grant.names = list(o.names, `${at}.names`).map((n, j) =>
        string(n, `${at}.names[${j}]`, DNS_SUBDOMAIN),
      );
    }
    if (o.selector !== undefined) {
      const selector: LabelSelector = object(o.selector, `${at}.selector`, [
        'matchLabels',
        'matchExpressions',
      ]);
      try {
        labelSelectorRequirements(selector);
      } catch (err) {
        fail(`${at}.selector`, (err as Error).message);
      }
      grant.selector = selector;
    }
    if (o.publish !== undefined) {
      if (typeof o.publish !== 'boolean') fail(`${at}.publish`, 'must be true or false');
      grant.publish = o.publish;
    }
    return grant;
  });
}
