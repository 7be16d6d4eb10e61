// A camera's events through a PullPoint subscription: create it, pull in a
// loop (each pull waits on the camera up to PULL_WAIT_S), renew it before it
// lapses, unsubscribe when the signal aborts. A failure drops the
// subscription and makes a new one after a capped, jittered backoff. Bounded:
// at most MESSAGE_LIMIT notifications asked for per pull (and at most
// MAX_NOTIFICATIONS read), and pulls at least MIN_PULL_MS apart, so a camera
// that ignores the wait time or floods cannot make us spin.
import { Backoff, sleep } from '../../src/util/backoff.ts';
import type { Notification } from './onvif-answers.ts';
import {
  createPullPoint,
  pullMessages,
  renew,
  unsubscribe,
  type CameraTarget,
} from './onvif-calls.ts';
import { CALL_TIMEOUT_MS } from './soap-client.ts';

/** The subscription lives this long unless renewed. */
const TERMINATION_S = 60;
/** Renewed when this much of its life has passed. */
const RENEW_AFTER_MS = 30_000;
/** How long one PullMessages waits on the camera for a notification. */
const PULL_WAIT_S = 5;
/** Notifications asked for per pull. */
const MESSAGE_LIMIT = 32;
/** Pulls start at least this far apart. */
const MIN_PULL_MS = 250;
/** An Unsubscribe on close is given this long. */
const UNSUBSCRIBE_MS = 2000;

export interface PullPointHooks {
  /** Notifications of one pull, in the camera's order. */
  notifications(ns: Notification[]): void;
  /** The subscription works (after a failure, or at first). */
  up(): void;
  /** A call failed; the loop backs off and subscribes again. */
  failed(err: unknown): void;
}

/** Runs until `t.signal` aborts; never throws. */
export async function runPullPoint(
  t: CameraTarget,
  eventsUrl: string,
  hooks: PullPointHooks,
  backoff = new Backoff({ initialMs: 1000, capMs: 60_000 }),
): Promise<void> {
  // A pull may take its wait time on the camera plus an ordinary call's limit.
  const call = { ...t, timeoutMs: PULL_WAIT_S * 1000 + (t.timeoutMs ?? CALL_TIMEOUT_MS) };
  while (!t.signal.aborted) {
    let pullPoint: string | undefined;
    try {
      pullPoint = await createPullPoint(t, eventsUrl, TERMINATION_S);
      let renewAt = Date.now() + RENEW_AFTER_MS;
      let healthy = false;
      for (;;) {
        const started = Date.now();
        if (started >= renewAt) {
          await renew(t, pullPoint, TERMINATION_S);
          renewAt = started + RENEW_AFTER_MS;
        }
        const ns = await pullMessages(call, pullPoint, PULL_WAIT_S, MESSAGE_LIMIT);
        if (!healthy) {
          healthy = true;
          backoff.reset();
          hooks.up();
        }
        if (ns.length > 0) hooks.notifications(ns);
        const elapsed = Date.now() - started;
        if (elapsed < MIN_PULL_MS) await sleep(MIN_PULL_MS - elapsed, t.signal);
      }
    } catch (err) {
      if (t.signal.aborted) break;
      hooks.failed(err);
      await sleep(backoff.nextDelay(), t.signal).catch(() => undefined);
    } finally {
      if (pullPoint !== undefined && t.signal.aborted) await quietUnsubscribe(t, pullPoint);
    }
  }
}

/** Best effort: the camera drops the subscription itself when it lapses. */
async function quietUnsubscribe(t: CameraTarget, pullPoint: string): Promise<void> {
  try {
    await unsubscribe(
      { ...t, signal: AbortSignal.timeout(UNSUBSCRIBE_MS), timeoutMs: UNSUBSCRIBE_MS },
      pullPoint,
    );
  } catch {
    // gone, or not answering: either way nothing more to do
  }
}
