// The spool: a durable store-and-forward queue between the node and the cloud
// broker. One contract (spool.ts), implementations registered by name here.
import { SpoolInvalidArgumentError } from './errors.ts';
import { openSqliteSpool } from './spool-sqlite.ts';
import type { Spool, SpoolOptions } from './spool.ts';

export * from './errors.ts';
export { MAX_PROPERTIES_BYTES, RECORD_OVERHEAD, encodeProperties } from './record.ts';
export type * from './spool.ts';

/** Every spool implementation, by name. */
export const SPOOL_STORES = {
  sqlite: openSqliteSpool,
} as const satisfies Record<string, (options: SpoolOptions) => Promise<Spool>>;

export type SpoolStore = keyof typeof SPOOL_STORES;

/** Opens the spool in `options.dir` with the named store (default 'sqlite'). */
export function openSpool(options: SpoolOptions & { store?: SpoolStore }): Promise<Spool> {
  const store = options.store ?? 'sqlite';
  if (!Object.hasOwn(SPOOL_STORES, store)) {
    return Promise.reject(
      new SpoolInvalidArgumentError(
        `unknown spool store ${JSON.stringify(store)}; known: ${Object.keys(SPOOL_STORES).join(', ')}`,
      ),
    );
  }
  return SPOOL_STORES[store](options);
}
