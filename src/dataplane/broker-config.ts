// The node broker's configuration file (--broker-config): who may connect and
// which devices they may use. Checked strictly against BROKER_CONFIG_SCHEMA:
// an unknown key or a bad value is one BrokerConfigError naming where it is, so
// a typo cannot widen access.
import { readBoundedFile } from '../util/bounded-file.ts';
import { parseJsonOrYaml } from '../util/yaml.ts';
import { checkSchema, SchemaError } from '../util/schema-check.ts';
import { BROKER_CONFIG_SCHEMA } from './broker-config-schema.ts';
import { labelSelectorRequirements } from '../registry/selectors.ts';
import type { ValueRef } from '../registry/registry.ts';
import type { DeviceGrant } from './access.ts';
import { sensorFilterProblem, type SensorTopicGrant } from './sensor-topics.ts';
import { BrokerConfigError } from './errors.ts';

/** Where a password comes from: a Secret or ConfigMap key (through the registry), or a file. */
export type PasswordSource = { ref: ValueRef } | { file: string };

export interface BrokerUser {
  name: string;
  password: PasswordSource;
  grants: DeviceGrant[];
  /** Sensor topics outside edgebridge/ (an MQTT sensor's own convention); undefined: none. */
  sensorTopics: SensorTopicGrant | undefined;
}

/** Grants for a pod's ServiceAccount (name undefined: every ServiceAccount of the namespace). */
export interface ServiceAccountGrant {
  namespace: string;
  name: string | undefined;
  grants: DeviceGrant[];
}

export interface BrokerConfig {
  /** Undefined: anonymous clients are refused. */
  anonymous: { grants: DeviceGrant[]; sensorTopics: SensorTopicGrant | undefined } | undefined;
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

function fail(where: string, problem: string): never {
  throw new BrokerConfigError(`${where}: ${problem}`);
}

type KeyRef = Omit<ValueRef, 'kind'>;
type GrantDoc = Omit<DeviceGrant, 'namespace'> & { namespace?: string };

/** The file as BROKER_CONFIG_SCHEMA describes it, defaults filled in. */
interface BrokerDoc {
  anonymous?: { devices?: GrantDoc[]; sensorTopics?: SensorTopicGrant };
  maxPacketBytes?: number;
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
  users: {
    name: string;
    passwordFrom: { secretKeyRef?: KeyRef; configMapKeyRef?: KeyRef; file?: string };
    devices: GrantDoc[];
    sensorTopics?: SensorTopicGrant;
  }[];
  serviceAccounts?: {
    audiences?: string[];
    cacheSeconds?: number;
    grants: { namespace: string; name?: string; devices: GrantDoc[] }[];
  };
}

export function parseBrokerConfig(doc: unknown): BrokerConfig {
  let top: BrokerDoc;
  try {
    top = checkSchema(BROKER_CONFIG_SCHEMA, doc, '') as BrokerDoc;
  } catch (err) {
    if (err instanceof SchemaError)
      throw new BrokerConfigError(err.field === '' ? `the file ${err.reason}` : err.message);
    throw err;
  }
  const config = defaultBrokerConfig();
  if (top.anonymous !== undefined)
    config.anonymous = {
      grants: grants(top.anonymous.devices ?? [], 'anonymous.devices', ''),
      sensorTopics: sensorTopics(top.anonymous.sensorTopics, 'anonymous.sensorTopics'),
    };
  config.maxPacketBytes = top.maxPacketBytes ?? config.maxPacketBytes;
  config.tls = top.tls;
  const names = new Set<string>();
  config.users = top.users.map((u, i) => {
    const where = `users[${i}]`;
    if (u.name === SERVICE_ACCOUNT_USERNAME)
      fail(`${where}.name`, `'${SERVICE_ACCOUNT_USERNAME}' is reserved for ServiceAccount tokens`);
    if (names.has(u.name)) fail(`${where}.name`, `duplicate user '${u.name}'`);
    names.add(u.name);
    return {
      name: u.name,
      password: passwordSource(u.passwordFrom),
      grants: grants(u.devices, `${where}.devices`, ''),
      sensorTopics: sensorTopics(u.sensorTopics, `${where}.sensorTopics`),
    };
  });
  const s = top.serviceAccounts;
  if (s !== undefined) {
    config.serviceAccounts = {
      audiences: s.audiences ?? config.serviceAccounts.audiences,
      cacheSeconds: s.cacheSeconds ?? config.serviceAccounts.cacheSeconds,
      grants: s.grants.map((g, i) => ({
        namespace: g.namespace,
        name: g.name,
        grants: grants(g.devices, `serviceAccounts.grants[${i}].devices`, g.namespace),
      })),
    };
  }
  return config;
}

/** A sensor grant with each filter checked; undefined when it grants nothing. */
function sensorTopics(
  doc: SensorTopicGrant | undefined,
  where: string,
): SensorTopicGrant | undefined {
  if (doc === undefined) return undefined;
  for (const kind of ['publish', 'subscribe'] as const)
    doc[kind].forEach((filter, i) => {
      const problem = sensorFilterProblem(filter);
      if (problem !== undefined)
        fail(`${where}.${kind}[${i}]`, `${JSON.stringify(filter.slice(0, 64))} ${problem}`);
    });
  return doc.publish.length + doc.subscribe.length === 0 ? undefined : doc;
}

function passwordSource(from: BrokerDoc['users'][number]['passwordFrom']): PasswordSource {
  if (from.file !== undefined) return { file: from.file };
  if (from.secretKeyRef !== undefined) return { ref: { kind: 'Secret', ...from.secretKeyRef } };
  // The schema let exactly one of the three through.
  return { ref: { kind: 'ConfigMap', ...(from.configMapKeyRef as KeyRef) } };
}

/**
 * Device grants with their selectors checked; `defaultNamespace` fills in a
 * missing namespace (a ServiceAccount's own; the schema requires it elsewhere).
 */
function grants(list: GrantDoc[], where: string, defaultNamespace: string): DeviceGrant[] {
  return list.map((g, i) => {
    if (g.selector !== undefined) {
      try {
        labelSelectorRequirements(g.selector);
      } catch (err) {
        fail(`${where}[${i}].selector`, (err as Error).message);
      }
    }
    return { ...g, namespace: g.namespace ?? defaultNamespace };
  });
}
