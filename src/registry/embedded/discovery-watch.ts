// The watch loop of the embedded registry: on every hint that the config file
// may have changed (fs.watch, or the poll), read it; if it holds a new set,
// record it, collect the garbage it leaves (as Kubernetes' garbage collector
// would) and hand the complete current set to the caller. Reconciles on state:
// a missed or repeated hint changes nothing.
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Discovery } from '../../api/types.ts';
import type { ConfigSnapshot } from './config-file.ts';
import { ConfigFileError } from './errors.ts';
import { watchFile } from './file-watch.ts';
import { LogLimiter } from '../../util/log-limiter.ts';

/** Wait this long after a file event before reading (an editor writing in steps). */
const DEBOUNCE_MS = 50;

export interface WatchDeps {
  /** The config file, or undefined if there is none (then the set never changes). */
  file: string | undefined;
  pollIntervalMs: number;
  log: Logger;
  /** The current config (last good set if the file is unusable); throws if there never was one. */
  config(): Promise<ConfigSnapshot>;
  /** The Discoveries of a config, as listDiscoveries returns them (recorded, generations bumped). */
  observe(snapshot: ConfigSnapshot): Promise<Discovery[]>;
  /** Deletes what the set no longer owns; false if the config changed meanwhile (run again). */
  collect(discoveries: Discovery[], version: number): Promise<boolean>;
}

/** Runs until the signal aborts, then returns once no call of onChange can follow. */
export async function runDiscoveryWatch(
  deps: WatchDeps,
  onChange: (discoveries: Discovery[]) => void,
  signal: AbortSignal,
): Promise<void> {
  if (signal.aborted) return;
  const { log } = deps;
  let seenVersion: number | undefined;
  let sent: Discovery[] | undefined;
  let running: Promise<void> | undefined;
  // Hints that came while a pass ran: run again, the pass may have read too early.
  let hints = 0;
  // The same failure on every poll is logged once, until a pass succeeds or it changes.
  const stopped = (): boolean => signal.aborted;

  /** One pass; true if it must be repeated (the config changed under it). */
  const pass = async (): Promise<boolean> => {
    const snapshot = await deps.config();
    if (snapshot.version === seenVersion || stopped()) return false;
    const discoveries = await deps.observe(snapshot);
    if (stopped()) return false;
    if (!(await deps.collect(discoveries, snapshot.version))) return true;
    seenVersion = snapshot.version;
    if (stopped() || (sent !== undefined && isDeepStrictEqual(sent, discoveries))) return false;
    sent = discoveries;
    try {
      onChange(discoveries);
    } catch (err) {
      log.error({ err }, 'the discoveries callback threw');
    }
    return false;
  };

  const limiter = new LogLimiter();
  const run = async (): Promise<void> => {
    for (;;) {
      const seen = hints;
      let repeat = false;
      try {
        repeat = await pass();
      } catch (err) {
        // A config file that never was good has been reported by the config source already.
        if (!(err instanceof ConfigFileError)) {
          limiter.log(
            log,
            'error',
            'watch',
            '',
            { err },
            'watching discoveries failed; will retry',
          );
        }
      }
      if (stopped() || (!repeat && hints === seen)) break;
    }
    running = undefined;
  };

  const trigger = (): void => {
    hints++;
    if (stopped() || running !== undefined) return;
    running = run();
  };

  let poll: NodeJS.Timeout | undefined;
  if (deps.file !== undefined) {
    const options = { intervalMs: deps.pollIntervalMs, debounceMs: DEBOUNCE_MS, signal, log };
    watchFile(deps.file, options, trigger);
  } else {
    // No file to watch; the poll only retries a pass that failed.
    poll = setInterval(trigger, deps.pollIntervalMs);
    poll.unref();
  }
  trigger();
  await new Promise<void>((resolve) => {
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  clearInterval(poll);
  await running;
}
