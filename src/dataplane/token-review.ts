import { createHash } from 'node:crypto';
import type { TokenReviewStatus } from '../registry/registry.ts';

export type { TokenReviewStatus };

/** Who a bearer token belongs to, as the API server says (a TokenReview). */
export interface TokenReviewer {
  review(token: string, audiences: string[]): Promise<TokenReviewStatus>;
}

/** A refused token is asked about again only after this long: a client retrying cannot flood the API server. */
const NEGATIVE_TTL_MS = 10_000;
const MAX_ENTRIES = 10_000;

/**
 * Remembers reviews by the token's SHA-256 (never the token itself) for
 * `ttlMs`, or until the token expires if that is sooner; concurrent reviews of
 * one token share one request. Failed requests are not remembered.
 */
export class CachingTokenReviewer implements TokenReviewer {
  readonly #inner: TokenReviewer;
  readonly #ttlMs: number;
  readonly #entries = new Map<string, { until: number; status: Promise<TokenReviewStatus> }>();

  constructor(inner: TokenReviewer, ttlMs: number) {
    this.#inner = inner;
    this.#ttlMs = ttlMs;
  }

  async review(token: string, audiences: string[]): Promise<TokenReviewStatus> {
    const key = createHash('sha256')
      .update(token)
      .update('\u0000')
      .update(audiences.join(','))
      .digest('hex');
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit !== undefined && hit.until > now) return hit.status;
    if (hit !== undefined) this.#entries.delete(key);
    const status = this.#inner.review(token, audiences);
    const entry = { until: now + this.#ttlMs, status };
    this.#entries.set(key, entry);
    while (this.#entries.size > MAX_ENTRIES) {
      // Maps iterate in insertion order: the first key is the oldest.
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    try {
      const result = await status;
      const ttl = result.authenticated ? this.#ttlMs : Math.min(this.#ttlMs, NEGATIVE_TTL_MS);
      entry.until = Math.min(now + ttl, tokenExpiry(token) ?? Infinity);
      return result;
    } catch (err) {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
      throw err;
    }
  }
}

/**
 * The `exp` claim of a JWT in ms, read without verifying (the API server
 * verifies): only used to forget a review no later than the token expires.
 */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined || payload.length > 8192) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    const exp = (claims as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
