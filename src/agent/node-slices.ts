// The agent's view of its own node's stored DeviceSlices: one watch for the
// node (label selector edgebridge.io/node), shared by every Discovery run, so
// that each run compares what it wants with what is really stored (a slice
// deleted or edited by hand is noticed and put back).
import type { Logger } from 'pino';
import { LABEL_DISCOVERY, type DeviceSlice } from '../api/types.ts';
import type { SliceStore } from '../registry/registry.ts';
import { keepWatching } from './keep-watching.ts';

/** "namespace/discovery": the key of a Discovery's slices, as the agent's queue keys Discoveries. */
export function sliceKey(slice: DeviceSlice): string {
  const discovery = slice.metadata.labels?.[LABEL_DISCOVERY] ?? slice.spec.discovery;
  return `${slice.metadata.namespace ?? 'default'}/${discovery}`;
}

/** contract: the stored slices of one node, by Discovery key; subscribers hear of every change. */
export class NodeSlices {
  readonly #store: SliceStore;
  readonly #node: string;
  readonly #log: Logger;
  #byKey = new Map<string, DeviceSlice[]>();
  /** The latest resource version seen of each slice ("namespace/name"), also of those deleted since. */
  readonly #seen = new Map<string, string>();
  readonly #listeners = new Map<string, Set<() => void>>();
  readonly #anyListeners = new Set<() => void>();
  #synced = false;
  readonly #syncedWaiters = new Set<() => void>();

  constructor(store: SliceStore, node: string, log: Logger) {
    this.#store = store;
    this.#node = node;
    this.#log = log;
  }

  /** Lists and watches until the signal aborts (failures retried with backoff). */
  run(signal: AbortSignal): Promise<void> {
    return keepWatching(
      'deviceslice',
      () => this.#store.watchNodeSlices(this.#node, (slices) => this.#observe(slices), signal),
      signal,
      this.#log,
    );
  }

  /** Resolves once the first list has arrived; rejects with the signal's reason if it aborts first. */
  synced(signal: AbortSignal): Promise<void> {
    if (this.#synced) return Promise.resolve();
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        signal.removeEventListener('abort', abort);
        this.#syncedWaiters.delete(done);
        resolve();
      };
      const abort = (): void => {
        this.#syncedWaiters.delete(done);
        reject(signal.reason as Error);
      };
      this.#syncedWaiters.add(done);
      signal.addEventListener('abort', abort, { once: true });
    });
  }

  /** The stored slices of a Discovery key ("namespace/discovery"). */
  of(key: string): DeviceSlice[] {
    return this.#byKey.get(key) ?? [];
  }

  /** The latest resource version the watch has shown of a slice, even if it is deleted since. */
  seenVersion(namespace: string, name: string): string | undefined {
    return this.#seen.get(`${namespace}/${name}`);
  }

  /** Every Discovery key that has stored slices. */
  keys(): string[] {
    return [...this.#byKey.keys()];
  }

  /** Calls `fn` (never synchronously with the caller) after each change to a key's slices; returns the unsubscribe. */
  subscribe(key: string, fn: () => void): () => void {
    const set = this.#listeners.get(key) ?? new Set();
    set.add(fn);
    this.#listeners.set(key, set);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.#listeners.delete(key);
    };
  }

  /** Calls `fn` after every change of any slice. */
  onAnyChange(fn: () => void): void {
    this.#anyListeners.add(fn);
  }

  #observe(slices: DeviceSlice[]): void {
    const before = this.#byKey;
    const next = new Map<string, DeviceSlice[]>();
    for (const s of slices) {
      const version = s.metadata.resourceVersion;
      if (version !== undefined)
        this.#seen.set(`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`, version);
      const key = sliceKey(s);
      next.set(key, [...(next.get(key) ?? []), s]);
    }
    this.#byKey = next;
    const changed = new Set<string>();
    for (const key of new Set([...before.keys(), ...next.keys()]))
      if (versions(before.get(key)) !== versions(next.get(key))) changed.add(key);
    if (!this.#synced) {
      this.#synced = true;
      for (const done of [...this.#syncedWaiters]) done();
    }
    if (changed.size === 0) return;
    queueMicrotask(() => {
      for (const key of changed) for (const fn of this.#listeners.get(key) ?? []) fn();
      for (const fn of this.#anyListeners) fn();
    });
  }
}

function versions(slices: DeviceSlice[] | undefined): string {
  return (slices ?? [])
    .map((s) => `${s.metadata.name}@${s.metadata.resourceVersion ?? ''}`)
    .sort()
    .join(',');
}
