// A TokenReview is one POST; it is made with node:https and the connection
// details of the kubeconfig, so it does not depend on a generated API client.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { RegistryRejectedError, RegistryUnavailableError } from '../errors.ts';
import type { TokenReviewStatus } from '../registry.ts';

const PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;

/** Posts a TokenReview for `token` and returns its status. */
export async function reviewToken(
  kc: KubeConfig,
  token: string,
  audiences: string[],
): Promise<TokenReviewStatus> {
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined)
    throw new RegistryRejectedError('token review: no cluster in the kubeconfig');
  const url = new URL(PATH, server);
  const options: https.RequestOptions = {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    timeout: TIMEOUT_MS,
  };
  await kc.applyToHTTPSOptions(options);
  const body = JSON.stringify({
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    spec: { token, audiences },
  });
  const { status, text } = await post(url, options, body);
  if (status !== 201 && status !== 200) {
    const what = `token review: HTTP ${status}: ${apiMessage(text)}`;
    // As elsewhere in this registry, 401/403 are retryable: RBAC may be granted later.
    if (status === 401 || status === 403 || status === 429 || status >= 500)
      throw new RegistryUnavailableError(what);
    throw new RegistryRejectedError(what, status);
  }
  const review = JSON.parse(text) as {
    status?: Partial<TokenReviewStatus> & { user?: { username?: string } };
  };
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

function post(
  url: URL,
  options: https.RequestOptions,
  body: string,
): Promise<{ status: number; text: string }> {
  const request = url.protocol === 'http:' ? http.request : https.request;
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new Error('response too large'));
        else chunks.push(c);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', (err) =>
        reject(new RegistryUnavailableError(`token review: ${err.message}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', (err) => reject(new RegistryUnavailableError(`token review: ${err.message}`)));
    req.end(body);
  });
}

function apiMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  } catch {
    // not a Status object
  }
  return text.slice(0, 200);
}
