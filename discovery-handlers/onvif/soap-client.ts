// One ONVIF SOAP call over HTTP, bounded: a time limit on the whole call
// (connect, headers and body, so a dripping camera cannot stretch it), a cap
// on the bytes read, the caller's AbortSignal, and HTTP digest when the camera
// answers 401 with a Digest challenge (once per call: a second 401 means the
// credentials are wrong). Written here rather than taken from the `onvif`
// package, whose 0.8 request reads a body without a cap, has only an idle
// timeout, takes no AbortSignal and hands its xml2js errors to callbacks.
import {
  OnvifAuthError,
  OnvifBadAnswerError,
  OnvifFaultError,
  OnvifTimeoutError,
  OnvifTooLargeError,
  OnvifUnreachableError,
} from './soap-errors.ts';
import { digestAuthorization, parseDigestChallenge } from './http-digest.ts';
import { envelope, parseSoap } from './soap-xml.ts';
import { securityHeader, type Credentials } from './ws-security.ts';

/** Default cap on an answer's bytes: ONVIF answers are a few KB. */
export const MAX_ANSWER_BYTES = 1024 * 1024;
/** Default time limit on one call. */
export const CALL_TIMEOUT_MS = 5000;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;

export interface SoapCall {
  /** The service URL (no userinfo: credentials go in `credentials`). */
  url: string;
  /** The SOAP action URI, sent in the Content-Type. */
  action: string;
  /** The Body's content. */
  body: string;
  /** Extra header XML (WS-Addressing for events). */
  header?: string;
  credentials?: Credentials | undefined;
  signal: AbortSignal;
  timeoutMs?: number;
  maxBytes?: number;
}

/** The children of the answer's Body; throws an OnvifSoapError (or the signal's reason). */
export async function soapCall(call: SoapCall): Promise<Record<string, unknown>> {
  call.signal.throwIfAborted();
  const timeoutMs = call.timeoutMs ?? CALL_TIMEOUT_MS;
  const maxBytes = call.maxBytes ?? MAX_ANSWER_BYTES;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = AbortSignal.any([call.signal, timeout]);
  // A fresh token (nonce) per request: a camera may refuse a replayed one.
  const payload = (): string =>
    envelope(
      call.body,
      (call.credentials === undefined ? '' : securityHeader(call.credentials)) +
        (call.header ?? ''),
    );
  try {
    let answer = await post(call, payload(), undefined, signal);
    if (answer.status === 401) {
      const challenge = parseDigestChallenge(answer.authenticate ?? '');
      if (challenge === undefined || call.credentials === undefined)
        throw new OnvifAuthError('HTTP 401');
      const u = new URL(call.url);
      const authorization = digestAuthorization(
        challenge,
        call.credentials,
        'POST',
        u.pathname + u.search,
      );
      answer = await post(call, payload(), authorization, signal);
      if (answer.status === 401) throw new OnvifAuthError('HTTP digest');
    }
    const text = await readCapped(answer.response, maxBytes);
    const parsed = parseSoap(text);
    if (!parsed.ok)
      throw new OnvifBadAnswerError(
        `HTTP ${answer.status}, ${parsed.reason.replace(CONTROL, '?')}`,
      );
    if ('fault' in parsed) {
      const { codes, reason } = parsed.fault;
      if (codes.some((c) => c === 'NotAuthorized' || c === 'FailedAuthentication'))
        throw new OnvifAuthError('WS-Security');
      throw new OnvifFaultError(
        codes.map((c) => c.replace(CONTROL, '?').slice(0, 64)),
        reason.replace(CONTROL, '?'),
      );
    }
    return parsed.body;
  } catch (err) {
    if (call.signal.aborted) throw call.signal.reason;
    if (timeout.aborted) throw new OnvifTimeoutError(timeoutMs);
    throw err;
  }
}

async function post(
  call: SoapCall,
  payload: string,
  authorization: string | undefined,
  signal: AbortSignal,
): Promise<{ status: number; authenticate: string | null; response: Response }> {
  let response: Response;
  try {
    response = await fetch(call.url, {
      method: 'POST',
      headers: {
        'content-type': `application/soap+xml; charset=utf-8; action="${call.action}"`,
        ...(authorization === undefined ? {} : { authorization }),
      },
      body: payload,
      redirect: 'manual',
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw err;
    throw new OnvifUnreachableError(causeCode(err));
  }
  const status = response.status;
  if (status === 401) {
    const authenticate = response.headers.get('www-authenticate');
    await response.body?.cancel().catch(() => undefined);
    return { status, authenticate, response };
  }
  // ONVIF answers faults with 400 or 500 and a SOAP body; other statuses carry none.
  if (status !== 200 && status !== 400 && status !== 500) {
    await response.body?.cancel().catch(() => undefined);
    throw new OnvifBadAnswerError(`HTTP ${status}`);
  }
  return { status, authenticate: null, response };
}

/** The body as text, reading no more than `max` bytes. */
async function readCapped(response: Response, max: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await response.body?.cancel().catch(() => undefined);
    throw new OnvifTooLargeError(max);
  }
  const reader: ReadableStreamDefaultReader<Uint8Array> | undefined = response.body?.getReader();
  if (reader === undefined) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) throw new OnvifTooLargeError(max);
      chunks.push(value);
    }
  } finally {
    if (total > max) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A short, credential-free cause of a failed fetch, e.g. ECONNREFUSED. */
function causeCode(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return code !== undefined && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'network error';
}
