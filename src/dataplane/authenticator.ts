// Who a connecting client is: a user from the broker config (password from a
// Secret, ConfigMap or file), a pod's ServiceAccount (username
// "serviceaccount", the projected token as password, checked by a
// TokenReview), or anonymous when the config allows it.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ValueRef } from '../registry/registry.ts';
import { readBoundedFile } from '../util/bounded-file.ts';
import type { DeviceGrant, Principal } from './access.ts';
import {
  SERVICE_ACCOUNT_USERNAME,
  type BrokerConfig,
  type BrokerUser,
  type PasswordSource,
} from './broker-config.ts';
import type { SensorTopicGrant } from './sensor-topics.ts';
import type { TokenReviewer } from './token-review.ts';

/** MQTT 3.1.1 CONNACK return codes a refusal uses. */
export const CONNACK = {
  SERVER_UNAVAILABLE: 3,
  BAD_USERNAME_OR_PASSWORD: 4,
  NOT_AUTHORIZED: 5,
} as const;

export type AuthResult =
  { ok: true; principal: Principal } | { ok: false; returnCode: 3 | 4 | 5; reason: string };

export interface AuthenticatorOptions {
  config: BrokerConfig;
  /** Reads Secret and ConfigMap keys (the registry's readValue). */
  readValue: (ref: ValueRef) => Promise<string | undefined>;
  /** Undefined without a cluster: ServiceAccount tokens are then refused. */
  tokens: TokenReviewer | undefined;
}

/** A password is read again after this long, so a rotated Secret takes effect. */
const PASSWORD_TTL_MS = 30_000;
const MAX_PASSWORD_FILE_BYTES = 64 * 1024;
const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([a-z0-9-]+):([a-z0-9.-]+)$/;

export class Authenticator {
  readonly #opts: AuthenticatorOptions;
  readonly #users: Map<string, BrokerUser>;
  readonly #passwords = new Map<string, { until: number; digest: Promise<Buffer | undefined> }>();

  constructor(opts: AuthenticatorOptions) {
    this.#opts = opts;
    this.#users = new Map(opts.config.users.map((u) => [u.name, u]));
  }

  async authenticate(
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<AuthResult> {
    const { config } = this.#opts;
    if (username === undefined && password === undefined) {
      return config.anonymous !== undefined
        ? { ok: true, principal: principal('anonymous', config.anonymous) }
        : refuse(CONNACK.NOT_AUTHORIZED, 'anonymous clients are not allowed');
    }
    if (username === undefined || password === undefined || password.length === 0)
      return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, 'username and password are both needed');
    if (username === SERVICE_ACCOUNT_USERNAME)
      return this.#serviceAccount(password.toString('utf8'));
    const user = this.#users.get(username);
    // An unknown user costs the same hash as a known one and gets the same answer.
    let expected: Buffer | undefined;
    try {
      expected = user === undefined ? undefined : await this.#passwordDigest(user);
    } catch (err) {
      return refuse(
        CONNACK.SERVER_UNAVAILABLE,
        `cannot read the password: ${(err as Error).message}`,
      );
    }
    const given = sha256(password);
    const match = timingSafeEqual(given, expected ?? sha256(Buffer.alloc(0)));
    if (user === undefined || expected === undefined || !match) {
      return refuse(CONNACK.BAD_USERNAME_OR_PASSWORD, 'unknown user or wrong password');
    }
    return { ok: true, principal: principal(`user:${user.name}`, user) };
  }

  async #serviceAccount(token: string): Promise<AuthResult> {
    const { tokens, config } = this.#opts;
    if (tokens === undefined)
      return refuse(CONNACK.NOT_AUTHORIZED, 'ServiceAccount tokens need a cluster to check them');
    let review;
    try {
      review = await tokens.review(token, config.serviceAccounts.audiences);
    } catch (err) {
      return refuse(CONNACK.SERVER_UNAVAILABLE, `token review failed: ${(err as Error).message}`);
    }
    if (!review.authenticated)
      return refuse(
        CONNACK.BAD_USERNAME_OR_PASSWORD,
        `token refused: ${review.error ?? 'not authenticated'}`,
      );
    const m = SERVICE_ACCOUNT_USER.exec(review.username ?? '');
    if (m === null) return refuse(CONNACK.NOT_AUTHORIZED, 'the token is not a ServiceAccount’s');
    const [, namespace = '', name = ''] = m;
    const grants: DeviceGrant[] = config.serviceAccounts.grants
      .filter((g) => g.namespace === namespace && (g.name === undefined || g.name === name))
      .flatMap((g) => g.grants);
    if (grants.length === 0)
      return refuse(CONNACK.NOT_AUTHORIZED, `no grants for ServiceAccount ${namespace}/${name}`);
    return { ok: true, principal: { name: `serviceaccount:${namespace}/${name}`, grants } };
  }

  /** The SHA-256 of the user's password, read at most every PASSWORD_TTL_MS; undefined if missing. */
  #passwordDigest(user: BrokerUser): Promise<Buffer | undefined> {
    const hit = this.#passwords.get(user.name);
    if (hit !== undefined && hit.until > Date.now()) return hit.digest;
    // Values written by editors, `echo` and `kubectl create secret --from-file` end with a
    // newline that is not part of the password.
    const digest = this.#readPassword(user.password).then((p) => {
      const password = p?.replace(/\r?\n$/, '');
      return password === undefined || password === '' ? undefined : sha256(Buffer.from(password));
    });
    const entry = { until: Date.now() + PASSWORD_TTL_MS, digest };
    this.#passwords.set(user.name, entry);
    // A failed read is not kept; the error reaches the caller as a refusal.
    digest.catch(() => {
      if (this.#passwords.get(user.name) === entry) this.#passwords.delete(user.name);
    });
    return digest;
  }

  async #readPassword(source: PasswordSource): Promise<string | undefined> {
    if ('ref' in source) return this.#opts.readValue(source.ref);
    return (await readBoundedFile(source.file, { maxBytes: MAX_PASSWORD_FILE_BYTES })).toString(
      'utf8',
    );
  }
}

/** A principal with its device grants and, where it has one, its sensor grant. */
function principal(
  name: string,
  from: { grants: DeviceGrant[]; sensorTopics: SensorTopicGrant | undefined },
): Principal {
  return from.sensorTopics === undefined
    ? { name, grants: from.grants }
    : { name, grants: from.grants, sensorTopics: from.sensorTopics };
}

function sha256(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}

function refuse(returnCode: 3 | 4 | 5, reason: string): AuthResult {
  return { ok: false, returnCode, reason };
}
