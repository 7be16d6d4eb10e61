// HTTP digest authentication (RFC 7616) for cameras that answer 401 with
// `WWW-Authenticate: Digest ...`: MD5 or SHA-256, qop=auth or none. Pure but
// for the client nonce.
import { createHash, randomBytes } from 'node:crypto';
import type { Credentials } from './ws-security.ts';

/** A header longer than this is not read (a hostile camera gains nothing by a huge one). */
const MAX_HEADER = 4096;

export interface DigestChallenge {
  realm: string;
  nonce: string;
  qop?: 'auth';
  algorithm: 'MD5' | 'SHA-256';
  opaque?: string;
}

const TOKEN = /\s*,?\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?/y;

/**
 * The Digest challenge we can answer among those of a WWW-Authenticate value
 * (several may be joined by commas): SHA-256 before MD5; undefined if none.
 */
export function parseDigestChallenge(header: string): DigestChallenge | undefined {
  if (header.length > MAX_HEADER) return undefined;
  const challenges: { scheme: string; params: Map<string, string> }[] = [];
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(header); m !== null; m = TOKEN.exec(header)) {
    const [, name = '', value] = m;
    if (value === undefined) {
      challenges.push({ scheme: name.toLowerCase(), params: new Map() });
    } else {
      const v = value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
      challenges.at(-1)?.params.set(name.toLowerCase(), v);
    }
    if (TOKEN.lastIndex >= header.length) break;
  }
  const usable = challenges.flatMap((c): DigestChallenge[] => {
    const realm = c.params.get('realm');
    const nonce = c.params.get('nonce');
    const algorithm = (c.params.get('algorithm') ?? 'MD5').toUpperCase();
    const qops = (c.params.get('qop') ?? '').split(',').map((q) => q.trim().toLowerCase());
    if (c.scheme !== 'digest' || realm === undefined || nonce === undefined) return [];
    if (algorithm !== 'MD5' && algorithm !== 'SHA-256') return [];
    if (c.params.has('qop') && !qops.includes('auth')) return [];
    const opaque = c.params.get('opaque');
    return [
      {
        realm,
        nonce,
        algorithm,
        ...(c.params.has('qop') ? { qop: 'auth' as const } : {}),
        ...(opaque !== undefined ? { opaque } : {}),
      },
    ];
  });
  return usable.find((c) => c.algorithm === 'SHA-256') ?? usable[0];
}

const hash = (algorithm: DigestChallenge['algorithm'], s: string): string =>
  createHash(algorithm === 'MD5' ? 'md5' : 'sha256')
    .update(s, 'utf8')
    .digest('hex');

/** The `response` value for a request (also what a server computes to check one). */
export function digestResponse(
  c: DigestChallenge,
  credentials: Credentials,
  method: string,
  uri: string,
  nc: string,
  cnonce: string,
): string {
  const ha1 = hash(c.algorithm, `${credentials.username}:${c.realm}:${credentials.password}`);
  const ha2 = hash(c.algorithm, `${method}:${uri}`);
  return c.qop === 'auth'
    ? hash(c.algorithm, `${ha1}:${c.nonce}:${nc}:${cnonce}:auth:${ha2}`)
    : hash(c.algorithm, `${ha1}:${c.nonce}:${ha2}`);
}

const quote = (s: string): string => `"${s.replace(/["\\]/g, '\\$&')}"`;

/** The Authorization header value answering `c` for `method` on `uri` (path and query). */
export function digestAuthorization(
  c: DigestChallenge,
  credentials: Credentials,
  method: string,
  uri: string,
): string {
  const nc = '00000001';
  const cnonce = randomBytes(8).toString('hex');
  const parts = [
    `username=${quote(credentials.username)}`,
    `realm=${quote(c.realm)}`,
    `nonce=${quote(c.nonce)}`,
    `uri=${quote(uri)}`,
    `algorithm=${c.algorithm}`,
    `response="${digestResponse(c, credentials, method, uri, nc, cnonce)}"`,
  ];
  if (c.qop === 'auth') parts.push('qop=auth', `nc=${nc}`, `cnonce="${cnonce}"`);
  if (c.opaque !== undefined) parts.push(`opaque=${quote(c.opaque)}`);
  return `Digest ${parts.join(', ')}`;
}
