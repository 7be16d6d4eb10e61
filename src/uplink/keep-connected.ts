// The uplink's reconnect loop, shared by the cloud sender and the node-broker
// source: connect, use the connection until it is lost, wait a capped,
// jittered delay, connect again. Bad configuration ends the loop instead.
import type { Logger } from 'pino';
import { Backoff, sleep, type BackoffOptions } from '../util/backoff.ts';
import { LogLimiter } from '../util/log-limiter.ts';
import { urlForLog } from '../util/url-for-log.ts';
import { UplinkConfigError } from './errors.ts';

/** How a used connection ended: why (logged), and the delay before the next, if not the usual backoff's. */
export interface ConnectionEnd {
  reason: string;
  retryInMs?: number;
}

export interface KeepConnectedOptions<C> {
  /** Names the peer in log lines, e.g. "cloud broker". */
  peer: string;
  url: string;
  log: Logger;
  backoff?: BackoffOptions | undefined;
  /** One attempt; an UplinkConfigError is terminal, anything else is retried. */
  connect: () => Promise<C>;
  /** Uses the connection until it is lost or the signal aborts. */
  use: (connection: C) => Promise<ConnectionEnd>;
}

/** Runs until the signal aborts; rejects only with an UplinkConfigError. */
export async function keepConnected<C>(
  opts: KeepConnectedOptions<C>,
  signal: AbortSignal,
): Promise<void> {
  const { log, peer } = opts;
  const url = urlForLog(opts.url);
  const backoff = new Backoff(opts.backoff);
  // A peer that is down for hours, or drops every connection at once, is worth a line a minute.
  const limiter = new LogLimiter();
  while (!signal.aborted) {
    let connection: C;
    try {
      connection = await opts.connect();
    } catch (err) {
      if (err instanceof UplinkConfigError) throw err;
      if (signal.aborted) break;
      const retryInMs = backoff.nextDelay();
      limiter.log(
        log,
        'warn',
        'unavailable',
        '',
        { url, err: (err as Error).message, retryInMs },
        `uplink: ${peer} unavailable`,
      );
      await sleep(retryInMs, signal).catch(() => undefined);
      continue;
    }
    backoff.reset();
    const end = await opts.use(connection);
    if (signal.aborted) break;
    const retryInMs = end.retryInMs ?? backoff.nextDelay();
    limiter.log(
      log,
      'warn',
      'connection-ended',
      '',
      { url, reason: end.reason, retryInMs },
      `uplink: connection to the ${peer} ended; reconnecting`,
    );
    await sleep(retryInMs, signal).catch(() => undefined);
  }
}
