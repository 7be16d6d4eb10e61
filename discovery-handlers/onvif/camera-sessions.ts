// The SOAP side of each listed camera: describe it (retried with backoff,
// longer after refused credentials), then follow its events through a
// PullPoint. One session per camera endpoint, started when WS-Discovery lists
// it, restarted when its device service URL changes, ended when it leaves.
import type { Logger } from 'pino';
import { Backoff, sleep } from '../../src/util/backoff.ts';
import { LogLimiter } from '../../src/util/log-limiter.ts';
import type { DevicePublisher, DiscoveredDevice } from '../handler.ts';
import type { CameraRecord } from './camera-table.ts';
import type { CredentialsBook } from './credentials.ts';
import { describeCamera, type CameraDescription } from './describe.ts';
import type { Notification } from './onvif-answers.ts';
import type { CameraTarget } from './onvif-calls.ts';
import { runPullPoint } from './pull-point.ts';
import { OnvifAuthError, OnvifSoapError } from './soap-errors.ts';

/** A whole description (a dozen calls) gets this long. */
const DESCRIBE_TIMEOUT_MS = 30_000;
/** Retries after the camera did not answer. */
const RETRY = { initialMs: 2000, capMs: 120_000 };
/** Retries after it refused the credentials: a Secret takes a while to be fixed. */
const AUTH_RETRY = { initialMs: 30_000, capMs: 600_000 };
/** Lines of one kind (refused, not described, events failed) a minute over all cameras. */
const LINES_PER_KIND = 50;
/** Properties of a camera whose credentials were refused. */
export const AUTH_PROPERTY = 'ONVIF_AUTH';

type Outcome =
  | { kind: 'pending' }
  | { kind: 'described'; description: CameraDescription }
  | { kind: 'auth-failed' };

interface Session {
  url: string;
  controller: AbortController;
  outcome: Outcome;
  done: Promise<void>;
  /** Resolves once the first description has succeeded or failed. */
  tried: Promise<void>;
  markTried: () => void;
}

export interface CameraSessionsOptions {
  signal: AbortSignal;
  log: Logger;
  publish: DevicePublisher;
  credentials: CredentialsBook;
  /** Called when a camera's description changed: the device list must be made again. */
  changed: () => void;
  /** Whether to follow events (default true). */
  events?: boolean;
  /** Time limit of one SOAP call (default soap-client's CALL_TIMEOUT_MS). */
  callTimeoutMs?: number;
}

export class CameraSessions {
  readonly #opts: CameraSessionsOptions;
  readonly #sessions = new Map<string, Session>();
  /** One line per camera and kind a minute, and LINES_PER_KIND over all cameras. */
  readonly #limiter = new LogLimiter({ perKind: LINES_PER_KIND });
  #closed = false;

  constructor(opts: CameraSessionsOptions) {
    this.#opts = opts;
  }

  /** Starts sessions for new cameras (or new URLs), ends those of cameras no longer listed. */
  update(cameras: readonly CameraRecord[]): void {
    if (this.#closed) return;
    const listed = new Map(cameras.map((c) => [c.endpoint, c]));
    for (const [endpoint, s] of this.#sessions) {
      const c = listed.get(endpoint);
      if (c === undefined || c.serviceUrl.href !== s.url) this.#end(endpoint, s);
    }
    for (const c of cameras) if (!this.#sessions.has(c.endpoint)) this.#start(c);
  }

  /** Resolves once every current camera's first description has succeeded or failed. */
  async settled(): Promise<void> {
    await Promise.all([...this.#sessions.values()].map((s) => s.tried));
  }

  /** `device` (from WS-Discovery) with what SOAP learnt of `camera`. */
  extend(camera: CameraRecord, device: DiscoveredDevice): DiscoveredDevice {
    const outcome = this.#sessions.get(camera.endpoint)?.outcome;
    if (outcome?.kind === 'auth-failed')
      return { ...device, properties: { ...device.properties, [AUTH_PROPERTY]: 'failed' } };
    if (outcome?.kind !== 'described') return device;
    const { properties, labels } = outcome.description;
    return {
      ...device,
      // WS-Discovery's own properties (id, URL, address) win over a camera's answers.
      properties: { ...properties, ...device.properties, [AUTH_PROPERTY]: 'ok' },
      labels: { ...device.labels, ...labels },
    };
  }

  /** Ends every session (an Unsubscribe each, bounded); idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const [endpoint, s] of this.#sessions) this.#end(endpoint, s);
    await Promise.all([...this.#pending]);
  }

  readonly #pending = new Set<Promise<void>>();

  #end(endpoint: string, s: Session): void {
    this.#sessions.delete(endpoint);
    s.controller.abort(new Error('camera left'));
    this.#pending.add(s.done);
    void s.done.finally(() => this.#pending.delete(s.done));
  }

  #start(c: CameraRecord): void {
    const controller = new AbortController();
    const signal = AbortSignal.any([this.#opts.signal, controller.signal]);
    let markTried = (): void => undefined;
    const tried = new Promise<undefined>((resolve) => {
      markTried = () => resolve(undefined);
    });
    const session: Session = {
      url: c.serviceUrl.href,
      controller,
      outcome: { kind: 'pending' },
      done: Promise.resolve(),
      tried,
      markTried,
    };
    this.#sessions.set(c.endpoint, session);
    const target: CameraTarget = {
      url: c.serviceUrl.href,
      credentials: this.#opts.credentials.forCamera(c.uuid),
      signal,
      ...(this.#opts.callTimeoutMs !== undefined ? { timeoutMs: this.#opts.callTimeoutMs } : {}),
    };
    session.done = this.#run(c, session, target)
      .catch((err: unknown) => {
        if (!signal.aborted)
          this.#opts.log.error({ err, endpoint: c.endpoint }, 'ONVIF camera session failed');
      })
      .finally(session.markTried);
  }

  async #run(c: CameraRecord, session: Session, target: CameraTarget): Promise<void> {
    const { log, publish } = this.#opts;
    const fields = { endpoint: c.endpoint, url: target.url };
    const retry = new Backoff(RETRY);
    const authRetry = new Backoff(AUTH_RETRY);
    // The device is online once listed (the agent says so); SOAP silence makes it offline.
    let up = true;
    const reachable = (now: boolean): void => {
      if (now !== up) publish.state(c.endpoint, now ? 'online' : 'offline');
      up = now;
    };
    let description: CameraDescription | undefined;
    while (description === undefined && !target.signal.aborted) {
      try {
        description = await describeCamera({
          ...target,
          signal: AbortSignal.any([target.signal, AbortSignal.timeout(DESCRIBE_TIMEOUT_MS)]),
        });
      } catch (err) {
        session.markTried();
        if (target.signal.aborted) return;
        const auth = err instanceof OnvifAuthError;
        if (auth || isUnreachable(err)) reachable(auth);
        if (auth && session.outcome.kind !== 'auth-failed') {
          session.outcome = { kind: 'auth-failed' };
          this.#opts.changed();
        }
        this.#limiter.log(
          log,
          'warn',
          auth ? 'auth' : 'describe',
          c.endpoint,
          {
            ...fields,
            ...errorFields(err, target.credentials !== undefined),
          },
          auth ? 'ONVIF camera refused the credentials' : 'ONVIF camera not described',
        );
        await sleep((auth ? authRetry : retry).nextDelay(), target.signal).catch(() => undefined);
      }
    }
    if (description === undefined) return;
    reachable(true);
    session.outcome = { kind: 'described', description };
    session.markTried();
    log.info(
      { ...fields, properties: Object.keys(description.properties).length },
      'ONVIF camera described',
    );
    this.#opts.changed();
    if (this.#opts.events === false || description.events === undefined) return;
    await runPullPoint(target, description.events, {
      notifications: (ns) => {
        for (const n of ns) publish.event(c.endpoint, eventOf(n));
      },
      up: () => {
        reachable(true);
        log.debug(fields, 'ONVIF PullPoint subscribed');
      },
      failed: (err) => {
        if (isUnreachable(err)) reachable(false);
        this.#limiter.log(
          log,
          'warn',
          'events',
          c.endpoint,
          { ...fields, ...errorFields(err, true) },
          'ONVIF PullPoint failed',
        );
      },
    });
  }
}

/** A notification as published on the device's events topic. */
function eventOf(n: Notification): Record<string, unknown> {
  return {
    type: 'onvif.notification',
    topic: n.topic,
    source: n.source,
    data: n.data,
    ...(n.utcTime !== undefined ? { utcTime: n.utcTime } : {}),
    ...(n.propertyOperation !== undefined ? { propertyOperation: n.propertyOperation } : {}),
  };
}

function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'EDGEBRIDGE_ONVIF_TIMEOUT' || code === 'EDGEBRIDGE_ONVIF_UNREACHABLE';
}

/** Log fields of a failure: our own errors' code and message (credential-free by construction), else only a kind. */
function errorFields(err: unknown, withCredentials: boolean): Record<string, unknown> {
  if (err instanceof OnvifSoapError)
    return { code: err.code, reason: err.message, withCredentials };
  const code = (err as { code?: unknown }).code;
  return { code: typeof code === 'string' ? code.slice(0, 64) : 'unknown', withCredentials };
}
