// A small Kubernetes REST client over node:http(s): one keep-alive agent per
// client, HTTP/1.1, JSON in and out. It replaces @kubernetes/client-node in the
// agent, whose generated models and HTTP stack cost hundreds of MB of memory.
import http from 'node:http';
import https from 'node:https';
import type { ClusterConnection } from './connection.ts';
import { ExecPluginError, KubeApiError, KubeTransportError } from './errors.ts';
import { ExecCredentials } from './exec-credentials.ts';
import type { ExecCredentialStatus } from './exec-plugin.ts';
import { TokenFile } from './token-file.ts';
import { ParseError, parseJson } from '../../../util/yaml.ts';

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_SOCKETS = 16;
/** Responses are read into memory; a list larger than this is refused rather than exhausting it. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Error bodies are only read for their Status message. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

export type QueryParams = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: QueryParams;
  /** Sent as JSON (which is also valid YAML, for apply patches). */
  body?: unknown;
  /** Default application/json. */
  contentType?: string;
  signal?: AbortSignal;
  /** Whole request, response body included (default 30 s). */
  timeoutMs?: number;
}

export interface StreamOptions {
  query?: QueryParams;
  signal?: AbortSignal;
  /** The stream fails with KubeTransportError when no bytes arrive for this long. */
  idleTimeoutMs: number;
}

export interface KubeClientOptions {
  /** Default timeout of a request (default 30 s). */
  timeoutMs?: number;
  /** How long an exec credential plugin may run (default exec-credentials.ts EXEC_TIMEOUT_MS). */
  execTimeoutMs?: number;
  /** Connections to the API server at most, watches included (default 16). */
  maxSockets?: number;
}

/** What one request authenticates with: a header, and the exec credential it came from (for a 401). */
interface Credential {
  authorization: string | undefined;
  exec?: ExecCredentialStatus;
}

/** Requests to one API server as one user. `close()` drops its pooled connections. */
export class KubeClient {
  readonly #base: URL;
  readonly #conn: ClusterConnection;
  #agent: http.Agent;
  /** The client certificate #agent presents, when an exec plugin gave it. */
  #agentCert: Buffer | undefined;
  readonly #send: typeof http.request;
  readonly #authorization: () => string | undefined;
  readonly #exec: ExecCredentials | undefined;
  readonly #timeoutMs: number;
  readonly #maxSockets: number;
  #closed = false;

  constructor(conn: ClusterConnection, opts: KubeClientOptions = {}) {
    this.#base = new URL(conn.server);
    this.#conn = conn;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxSockets = opts.maxSockets ?? MAX_SOCKETS;
    this.#agent = this.#makeAgent(conn.cert, conn.key);
    this.#send = this.#base.protocol === 'https:' ? https.request : http.request;
    this.#authorization = authorization(conn);
    this.#exec =
      conn.auth.kind === 'exec'
        ? new ExecCredentials(conn.auth.exec, {
            ...(opts.execTimeoutMs !== undefined ? { timeoutMs: opts.execTimeoutMs } : {}),
          })
        : undefined;
  }

  #makeAgent(cert: Buffer | undefined, key: Buffer | undefined): http.Agent {
    const conn = this.#conn;
    if (this.#base.protocol !== 'https:')
      return new http.Agent({ keepAlive: true, maxSockets: this.#maxSockets });
    return new https.Agent({
      keepAlive: true,
      maxSockets: this.#maxSockets,
      ...(conn.ca !== undefined ? { ca: conn.ca } : {}),
      ...(cert !== undefined ? { cert } : {}),
      ...(key !== undefined ? { key } : {}),
      ...(conn.tlsServerName !== undefined ? { servername: conn.tlsServerName } : {}),
      rejectUnauthorized: !conn.insecureSkipTlsVerify,
    });
  }

  /** The credential for the next request; runs the exec plugin when its answer is missing or expired. */
  async #credential(signal: AbortSignal | undefined): Promise<Credential> {
    if (this.#exec === undefined) return { authorization: this.#authorization() };
    const cred = await this.#exec.get(signal);
    if (
      cred.cert !== undefined &&
      cred.key !== undefined &&
      !sameBytes(cred.cert, this.#agentCert)
    ) {
      // A new client certificate: connections made with the old one are closed, as
      // client-go does on rotation, so that no request goes out under a stale identity.
      const old = this.#agent;
      this.#agent = this.#makeAgent(cred.cert, cred.key);
      this.#agentCert = cred.cert;
      old.destroy();
    }
    return {
      authorization: cred.token !== undefined ? `Bearer ${cred.token}` : undefined,
      exec: cred,
    };
  }

  /** Sends a request and parses the JSON answer; a non-2xx answer throws KubeApiError. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    // The exec plugin first, outside the request's deadline: it has its own, and a
    // plugin that opens a browser for a login takes longer than a request may.
    const cred =
      this.#exec !== undefined && !this.#closed ? await this.#credential(opts.signal) : undefined;
    // A timer cleared on completion, not AbortSignal.timeout: thousands of
    // requests would otherwise leave as many pending timers behind.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    timer.unref();
    const signal =
      opts.signal === undefined ? deadline.signal : AbortSignal.any([opts.signal, deadline.signal]);
    const what = `${method} ${path}`;
    try {
      const res = await this.#open(method, path, opts.query, opts, signal, cred);
      const body = await readBody(res, MAX_RESPONSE_BYTES, what);
      return (body.length === 0 ? {} : parseJson(body.toString('utf8'))) as T;
    } catch (err) {
      if (opts.signal?.aborted === true) throw opts.signal.reason;
      if (deadline.signal.aborted)
        throw new KubeTransportError(`${what}: no answer in ${timeoutMs} ms`);
      if (
        err instanceof KubeApiError ||
        err instanceof KubeTransportError ||
        err instanceof ExecPluginError
      )
        throw err;
      // Its position only: the answer may be a Secret.
      if (err instanceof ParseError)
        throw new KubeTransportError(`${what}: the answer is ${err.message}`);
      throw new KubeTransportError(`${what}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Opens a streaming GET (a watch) and resolves with the response once the
   * server answered 2xx; the caller reads it and destroys it when done.
   */
  async stream(path: string, opts: StreamOptions): Promise<http.IncomingMessage> {
    const what = `GET ${path} (stream)`;
    try {
      return await this.#open(
        'GET',
        path,
        opts.query,
        { idleTimeoutMs: opts.idleTimeoutMs },
        opts.signal,
      );
    } catch (err) {
      if (opts.signal?.aborted === true) throw opts.signal.reason;
      if (
        err instanceof KubeApiError ||
        err instanceof KubeTransportError ||
        err instanceof ExecPluginError
      )
        throw err;
      throw new KubeTransportError(`${what}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Drops pooled connections; later requests fail. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#agent.destroy();
  }

  /**
   * Sends one request. With an exec plugin, a 401 means its credential was
   * revoked or expired early: the plugin runs again and the request is sent
   * once more (the server acted on nothing it refused).
   */
  async #open(
    method: string,
    path: string,
    query: QueryParams | undefined,
    opts: { body?: unknown; contentType?: string; idleTimeoutMs?: number },
    signal: AbortSignal | undefined,
    /** The credential to send first, if the caller already has it. */
    first?: Credential,
  ): Promise<http.IncomingMessage> {
    if (this.#closed) throw new KubeTransportError('the Kubernetes client is closed');
    if (signal?.aborted === true) throw signal.reason as Error;
    const cred = first ?? (await this.#credential(signal));
    try {
      return await this.#openWith(cred, method, path, query, opts, signal);
    } catch (err) {
      if (cred.exec === undefined || !(err instanceof KubeApiError) || err.status !== 401)
        throw err;
      this.#exec?.invalidate(cred.exec);
      const again = await this.#credential(signal);
      return this.#openWith(again, method, path, query, opts, signal);
    }
  }

  #openWith(
    cred: Credential,
    method: string,
    path: string,
    query: QueryParams | undefined,
    opts: { body?: unknown; contentType?: string; idleTimeoutMs?: number },
    signal: AbortSignal | undefined,
  ): Promise<http.IncomingMessage> {
    if (this.#closed)
      return Promise.reject(new KubeTransportError('the Kubernetes client is closed'));
    const url = new URL(this.#base.pathname.replace(/\/$/, '') + path, this.#base);
    for (const [k, v] of Object.entries(query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: http.OutgoingHttpHeaders = {
      accept: 'application/json',
      'user-agent': 'edgebridge',
    };
    if (cred.authorization !== undefined) headers.authorization = cred.authorization;
    if (payload !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const req = this.#send(url, {
        method,
        headers,
        agent: this.#agent,
        ...(signal !== undefined ? { signal } : {}),
      });
      if (opts.idleTimeoutMs !== undefined) {
        const idle = opts.idleTimeoutMs;
        req.setTimeout(idle, () =>
          req.destroy(new KubeTransportError(`GET ${url.pathname}: no data for ${idle} ms`)),
        );
      }
      req.once('error', reject);
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        readBody(res, MAX_ERROR_BODY_BYTES, `${method} ${url.pathname}`, true).then(
          (body) => reject(apiError(status, body)),
          reject,
        );
      });
      req.end(payload);
    });
  }
}

/** The Authorization header for each request (a token file is checked for rotation every time). */
function authorization(conn: ClusterConnection): () => string | undefined {
  const auth = conn.auth;
  switch (auth.kind) {
    case 'token':
      return () => `Bearer ${auth.token}`;
    case 'tokenFile': {
      const file = new TokenFile(auth.file);
      return () => `Bearer ${file.read()}`;
    }
    case 'basic': {
      const value = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
      return () => value;
    }
    case 'none':
      return () => undefined;
    case 'exec':
      // Asked for per request by #credential instead.
      return () => undefined;
  }
}

function sameBytes(a: Buffer, b: Buffer | undefined): boolean {
  return b !== undefined && a.equals(b);
}

/** Reads a response body up to `max` bytes; beyond that it fails, or (truncate) stops reading. */
async function readBody(
  res: http.IncomingMessage,
  max: number,
  what: string,
  truncate = false,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      res.destroy();
      if (truncate) break;
      throw new KubeTransportError(`${what}: answer larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A KubeApiError from an error answer, with the Status object's reason and message if it sent one. */
export function apiError(status: number, body: Buffer): KubeApiError {
  const text = body.toString('utf8');
  try {
    const parsed = JSON.parse(text) as { reason?: unknown; message?: unknown };
    return new KubeApiError(
      status,
      typeof parsed.reason === 'string' && parsed.reason !== '' ? parsed.reason : undefined,
      typeof parsed.message === 'string' ? parsed.message : `HTTP ${status}`,
    );
  } catch {
    return new KubeApiError(status, undefined, text.trim().slice(0, 500) || `HTTP ${status}`);
  }
}
