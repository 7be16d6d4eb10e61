// Resolves the configuration's value sources (inline, file, Secret) into the
// MQTT client's connection options. Secrets come through the registry's
// readValue(), which works for both registry back ends; nothing resolved here
// is ever logged.
import type { IClientOptions } from 'mqtt';
import type { ValueRef } from '../registry/registry.ts';
import type { CloudConfig, ValueSource } from './config.ts';
import { readBoundedFile } from '../util/bounded-file.ts';
import { UplinkConfigError } from './errors.ts';

/** A certificate bundle, key or password file is far smaller. */
const MAX_CREDENTIAL_BYTES = 1024 * 1024;

/** Reads a Secret key; the registry's readValue. */
export type ReadValue = (ref: ValueRef) => Promise<string | undefined>;

/** The content of a value source; an UplinkConfigError (never retried) if it cannot be had. */
export async function resolveValue(
  src: ValueSource,
  field: string,
  readValue: ReadValue | undefined,
): Promise<Buffer> {
  if ('value' in src) return Buffer.from(src.value);
  if ('file' in src) {
    try {
      return await readBoundedFile(src.file, { maxBytes: MAX_CREDENTIAL_BYTES });
    } catch (err) {
      throw new UplinkConfigError(`${field}: cannot read ${src.file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  const ref = src.secretKeyRef;
  const where = `Secret ${ref.namespace}/${ref.name} key ${ref.key}`;
  if (readValue === undefined)
    throw new UplinkConfigError(`${field}: no registry to read ${where}`);
  let value: string | undefined;
  try {
    value = await readValue({ kind: 'Secret', ...ref });
  } catch (err) {
    throw new UplinkConfigError(`${field}: reading ${where} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (value === undefined) throw new UplinkConfigError(`${field}: ${where} does not exist`);
  return Buffer.from(value);
}

/** Credentials and TLS material for one connection, resolved afresh (a rotated Secret takes effect on reconnect). */
export async function resolveConnectionOptions(
  cfg: Pick<CloudConfig, 'username' | 'password' | 'tls'>,
  field: string,
  readValue: ReadValue | undefined,
): Promise<IClientOptions> {
  const get = (src: ValueSource | undefined, name: string): Promise<Buffer | undefined> =>
    src === undefined
      ? Promise.resolve(undefined)
      : resolveValue(src, `${field}.${name}`, readValue);
  const [username, password, ca, cert, key] = await Promise.all([
    get(cfg.username, 'username'),
    get(cfg.password, 'password'),
    get(cfg.tls?.ca, 'tls.ca'),
    get(cfg.tls?.cert, 'tls.cert'),
    get(cfg.tls?.key, 'tls.key'),
  ]);
  const out: IClientOptions = {};
  if (username !== undefined) out.username = username.toString('utf8').trim();
  if (password !== undefined) out.password = password;
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  if (cfg.tls?.servername !== undefined) out.servername = cfg.tls.servername;
  return out;
}
