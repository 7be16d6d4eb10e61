import type { Readable } from 'node:stream';
import type { KubeClient } from './kube-client.ts';

/** A list answer: the items and the resource version to watch from. */
export interface KubeList<T> {
  metadata?: { resourceVersion?: string };
  items?: T[];
}

/** How an informer lists a collection and watches it from a resource version. */
export interface ListWatch<T> {
  list(signal: AbortSignal): Promise<KubeList<T>>;
  /** A stream of line-delimited watch events; the informer destroys it when done. */
  watch(resourceVersion: string, signal: AbortSignal): Promise<Readable>;
}

export interface Selectors {
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
}

/** The server ends each watch after 5 to 10 minutes (spread, so that watchers do not reconnect together). */
const WATCH_MIN_S = 300;
const WATCH_MAX_S = 600;
/** A watch that sent nothing for longer than its own timeout plus this is taken for a dead connection. */
const IDLE_MARGIN_MS = 30_000;

/**
 * List and watch of a collection path (e.g. /apis/g/v/discoveries). `wrap`
 * sees each request (to count it) as "list" or "watch".
 */
export function listWatch<T>(
  client: KubeClient,
  path: string,
  selectors: Selectors = {},
  wrap: <R>(verb: 'list' | 'watch', fn: () => Promise<R>) => Promise<R> = (_verb, fn) => fn(),
): ListWatch<T> {
  const query = {
    labelSelector: selectors.labelSelector,
    fieldSelector: selectors.fieldSelector,
  };
  return {
    list: (signal) =>
      wrap('list', () => client.request<KubeList<T>>('GET', path, { query, signal })),
    watch: (resourceVersion, signal) => {
      const timeoutSeconds = WATCH_MIN_S + Math.floor(Math.random() * (WATCH_MAX_S - WATCH_MIN_S));
      return wrap('watch', () =>
        client.stream(path, {
          query: {
            ...query,
            watch: 1,
            resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds,
          },
          signal,
          idleTimeoutMs: timeoutSeconds * 1000 + IDLE_MARGIN_MS,
        }),
      );
    },
  };
}
