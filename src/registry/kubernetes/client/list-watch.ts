import type { Readable } from 'node:stream';
import type { KubeClient } from './kube-client.ts';

/** A list answer: the items, the resource version to watch from, and the token of the next page if any. */
export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

/** How an informer lists a collection and watches it from a resource version. */
export interface ListWatch<T> {
  /** One page of the list: the first without `continueToken`, the next with the previous page's. */
  list(signal: AbortSignal, continueToken?: string): Promise<KubeList<T>>;
  /** A stream of line-delimited watch events; the informer destroys it when done. */
  watch(resourceVersion: string, signal: AbortSignal): Promise<Readable>;
}

export interface Selectors {
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  /** Objects per list page (default LIST_PAGE_SIZE). */
  pageSize?: number | undefined;
}

/** The server ends each watch after 5 to 10 minutes (spread, so that watchers do not reconnect together). */
const WATCH_MIN_S = 300;
const WATCH_MAX_S = 600;
/** A watch that sent nothing for longer than its own timeout plus this is taken for a dead connection. */
const IDLE_MARGIN_MS = 30_000;
/**
 * Objects per list page (client-go's informers ask for 500): a list of
 * 10,000 Devices would otherwise be one body of tens of MB, held whole while
 * it is parsed.
 */
export const LIST_PAGE_SIZE = 500;

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
  const pageSize = selectors.pageSize ?? LIST_PAGE_SIZE;
  return {
    list: (signal, continueToken) =>
      wrap('list', () =>
        client.request<KubeList<T>>('GET', path, {
          query: { ...query, limit: pageSize, continue: continueToken },
          signal,
        }),
      ),
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
