// List-then-watch, as client-go's reflector: list for the complete set and a
// resource version, watch from it (bookmarks keep it fresh), watch again when
// the server ends the stream, relist when the version has expired (410) or an
// event was lost; other failures wait a capped, jittered backoff.
import type { Logger } from 'pino';
import { Backoff, sleep } from '../../../util/backoff.ts';
import { KubeApiError, KubeTransportError, WatchStreamError } from './errors.ts';
import type { ListWatch } from './list-watch.ts';
import { watchEvents } from './watch-events.ts';
import { LogLimiter } from '../../../util/log-limiter.ts';

/** etcd refuses objects over 1.5 MiB; an event is that object in JSON plus a little. */
export const DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024;
/** A watch that ends sooner than this without an event is a failure, not the server's timeout. */
const MIN_WATCH_MS = 1000;

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export interface InformerOptions<T> {
  source: ListWatch<T>;
  /** Called with the complete current set after every list, and after every change unless onEvent is given. */
  onSync: (items: T[]) => void;
  /**
   * contract: when given, called for each watch event instead of onSync (which
   * then comes only after lists), so that a large set is not copied per change.
   */
  onEvent?: (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void;
  log: Logger;
  /** What is watched, for log lines (e.g. "discoveries"). */
  what: string;
  maxEventBytes?: number;
  /**
   * contract: applied to each object as it is decoded (list page or watch
   * event), before anything keeps it, as client-go's SetTransform: what the
   * caller never reads (managedFields) is dropped at once, not held per object.
   */
  transform?: (object: T) => T;
}

function keyOf(o: KubeObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

/** True for "resource version too old": only a new list can continue. */
export function isExpired(err: unknown): boolean {
  return err instanceof KubeApiError && (err.status === 410 || err.reason === 'Expired');
}

/** The error an ERROR watch event carries (a Status object). */
function statusError(status: Record<string, unknown>): KubeApiError {
  const code = typeof status.code === 'number' ? status.code : 500;
  return new KubeApiError(
    code,
    typeof status.reason === 'string' ? status.reason : undefined,
    typeof status.message === 'string' ? status.message : `watch error ${code}`,
  );
}

/**
 * Every page of a list, each object transformed as its page arrives: a page's
 * body and raw objects are garbage before the next page is asked for. An
 * expired continue token (410) fails the whole list, which then starts over.
 */
async function listPages<T extends KubeObject>(
  source: ListWatch<T>,
  transform: (object: T) => T,
  signal: AbortSignal,
): Promise<{ items: T[]; version: string }> {
  const items: T[] = [];
  let token: string | undefined;
  let version = '';
  do {
    const page = await source.list(signal, token);
    for (const o of page.items ?? []) items.push(transform(o));
    // Every page carries the version of the first one's snapshot.
    version = page.metadata?.resourceVersion ?? version;
    token = page.metadata?.continue;
  } while (token !== undefined && token !== '');
  return { items, version };
}

/** Lists and watches until the signal aborts; resolves then. Never throws for API or stream failures. */
export async function runInformer<T extends KubeObject>(
  opts: InformerOptions<T>,
  signal: AbortSignal,
): Promise<void> {
  const { source, log, what } = opts;
  const maxEventBytes = opts.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  const transform = opts.transform ?? ((o: T) => o);
  // The current set, for onSync after each event; with onEvent the caller keeps its own.
  const items = opts.onEvent === undefined ? new Map<string, T>() : undefined;
  const backoff = new Backoff();
  const limiter = new LogLimiter();
  let version: string | undefined;
  /** Set when a relist follows an expiry; a second expiry before any event waits a backoff. */
  let relisted = false;
  while (!signal.aborted) {
    try {
      if (version === undefined) {
        const list = await listPages(source, transform, signal);
        version = list.version;
        if (items === undefined) opts.onSync(list.items);
        else {
          items.clear();
          for (const o of list.items) items.set(keyOf(o), o);
          opts.onSync([...items.values()]);
        }
      }
      const started = Date.now();
      let events = 0;
      const stream = await source.watch(version, signal);
      try {
        for await (const item of watchEvents(stream, maxEventBytes)) {
          if (!item.ok) throw item.error;
          const { type, object } = item.event;
          if (type === 'ERROR') throw statusError(object);
          events++;
          relisted = false;
          version = (object as T).metadata?.resourceVersion ?? version;
          if (type === 'BOOKMARK') continue;
          const o = transform(object as T);
          backoff.reset();
          if (items === undefined) opts.onEvent?.(type, o);
          else {
            if (type === 'DELETED') items.delete(keyOf(o));
            else items.set(keyOf(o), o);
            opts.onSync([...items.values()]);
          }
        }
      } finally {
        stream.destroy();
      }
      if (events === 0 && Date.now() - started < MIN_WATCH_MS)
        throw new KubeTransportError(`the watch of ${what} ended at once`);
    } catch (err) {
      if (signal.aborted) return;
      // A skipped event may have been a change: only a new list is sure to be complete.
      if (isExpired(err) || err instanceof WatchStreamError) version = undefined;
      if (isExpired(err) && !relisted) {
        log.info({ err: (err as Error).message }, `watch of ${what} expired; listing again`);
        relisted = true;
        continue;
      }
      const delay = backoff.nextDelay();
      limiter.log(
        log,
        'warn',
        'watch',
        '',
        { err: (err as Error).message, retryInMs: delay },
        `watch of ${what} failed; retrying`,
      );
      await sleep(delay, signal).catch(() => undefined);
    }
  }
}
