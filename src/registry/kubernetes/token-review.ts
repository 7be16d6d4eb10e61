// A TokenReview asks the API server who a bearer token belongs to; the node
// broker uses it to let pods log in with their projected ServiceAccount token.
import type { TokenReviewStatus } from '../registry.ts';
import { classifyApiError } from './api-errors.ts';
import type { KubeClient } from './client/kube-client.ts';

const PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const TIMEOUT_MS = 10_000;

interface TokenReview {
  status?: Partial<TokenReviewStatus> & { user?: { username?: unknown } };
}

/** Posts a TokenReview for `token` and returns its status (never the token). */
export async function reviewToken(
  client: KubeClient,
  token: string,
  audiences: string[],
): Promise<TokenReviewStatus> {
  let review: TokenReview;
  try {
    review = await client.request<TokenReview>('POST', PATH, {
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences },
      },
      timeoutMs: TIMEOUT_MS,
    });
  } catch (err) {
    throw classifyApiError(err, 'token review');
  }
  const s = review.status ?? {};
  return {
    authenticated: s.authenticated === true,
    ...(typeof s.user?.username === 'string' ? { username: s.user.username } : {}),
    ...(Array.isArray(s.audiences)
      ? { audiences: s.audiences.filter((a) => typeof a === 'string') }
      : {}),
    ...(typeof s.error === 'string' ? { error: s.error } : {}),
  };
}
