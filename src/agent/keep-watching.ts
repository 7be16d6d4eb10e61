import type { Logger } from 'pino';
import { Backoff, sleep } from '../util/backoff.ts';
import { LogLimiter } from '../util/log-limiter.ts';

/** Runs a watch again after it fails or ends (capped, jittered backoff) until the signal aborts. */
export async function keepWatching(
  what: string,
  watch: () => Promise<void>,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const backoff = new Backoff();
  const limiter = new LogLimiter();
  while (!signal.aborted) {
    let failure = 'the watch ended';
    try {
      await watch();
    } catch (err) {
      failure = (err as Error).message;
    }
    if (signal.aborted) break;
    const delay = backoff.nextDelay();
    limiter.log(
      log,
      'warn',
      'watch',
      '',
      { err: failure, retryInMs: delay },
      `${what} watch failed`,
    );
    await sleep(delay, signal).catch(() => undefined);
  }
}
