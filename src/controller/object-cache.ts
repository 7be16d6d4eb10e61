// What the informers last saw of one resource, keyed namespace/name, plus the
// objects the controller itself has just written: the informer's copy of a
// write arrives a moment later, and reading the older one meanwhile would
// write again (and fail on the resource version) for nothing.

export interface CachedObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

/** What changed between two informer syncs. */
export interface CacheDelta<T> {
  /** New or changed objects, with the copy they replace. */
  changed: { object: T; previous: T | undefined }[];
  removed: T[];
}

export function keyOf(o: CachedObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

/** How long a write may go unseen by the informer before the informer's copy counts again. */
const WRITTEN_TTL_MS = 60_000;

/** True if resource version `a` is newer than `b` (etcd's are integers; anything else counts as newer). */
function newer(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return a !== undefined;
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return a !== b;
  return BigInt(a) > BigInt(b);
}

/** contract: the current objects of one resource; filled by an informer, read by reconcilers. */
export class ObjectCache<T extends CachedObject> {
  #items = new Map<string, T>();
  /** Objects this controller wrote (or deleted: null) that the informer has not caught up with. */
  readonly #written = new Map<
    string,
    { object: T | null; version: string | undefined; at: number }
  >();
  #synced = false;
  readonly #slim: (object: T) => T;

  /** `slim`: what of an object is kept (slim-objects.ts); the informer applies it too, as it decodes. */
  constructor(slim: (object: T) => T = (o) => o) {
    this.#slim = slim;
  }

  /** The part of `object` this cache keeps. */
  slim(object: T): T {
    return this.#slim(object);
  }

  /** True once the informer's first list arrived. */
  get synced(): boolean {
    return this.#synced;
  }

  /**
   * Takes the informer's complete current set. The informer keeps the same
   * object for what did not change, so identity tells what did.
   */
  replace(items: readonly T[]): CacheDelta<T> {
    const next = new Map<string, T>();
    const changed: CacheDelta<T>['changed'] = [];
    for (const o of items) {
      const key = keyOf(o);
      next.set(key, o);
      const previous = this.#items.get(key);
      if (previous !== o) changed.push({ object: o, previous });
    }
    const removed: T[] = [];
    for (const [key, o] of this.#items) if (!next.has(key)) removed.push(o);
    this.#items = next;
    this.#synced = true;
    const gone = new Map(removed.map((o) => [keyOf(o), o.metadata?.resourceVersion]));
    // The newest version the informer has shown, even of an object it has just seen deleted.
    for (const key of [...this.#written.keys()])
      this.#settle(key, next.get(key)?.metadata?.resourceVersion ?? gone.get(key));
    return { changed, removed };
  }

  /** Takes one watch event (the informer's onEvent): O(1), where replace() is O(n). */
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): CacheDelta<T> {
    const key = keyOf(object);
    const previous = this.#items.get(key);
    let delta: CacheDelta<T>;
    if (type === 'DELETED') {
      this.#items.delete(key);
      delta = { changed: [], removed: previous === undefined ? [] : [previous] };
    } else {
      this.#items.set(key, object);
      delta = { changed: [{ object, previous }], removed: [] };
    }
    if (this.#written.has(key)) this.#settle(key, object.metadata?.resourceVersion);
    return delta;
  }

  /** Drops the write of `key` once the informer has caught up with it (`seen`: the newest version it showed). */
  #settle(key: string, seen: string | undefined): void {
    const w = this.#written.get(key);
    if (w === undefined) return;
    const present = this.#items.has(key);
    const caughtUp =
      w.object === null
        ? !present || newer(seen, w.version)
        : seen !== undefined && !newer(w.version, seen);
    // A write the informer never shows (deleted again at once, across a relist) is forgotten in time.
    if (caughtUp || Date.now() - w.at > WRITTEN_TTL_MS) this.#written.delete(key);
  }

  /** Records the answer of a write (the object as stored), or a deletion (null, with the deleted copy's version). */
  wrote(key: string, written: T | null, deletedVersion?: string): void {
    const object = written === null ? null : this.#slim(written);
    const version = object === null ? deletedVersion : object.metadata?.resourceVersion;
    const seen = this.#items.get(key);
    // The informer may have shown the write before its answer arrived.
    const shown =
      object === null
        ? seen === undefined
        : seen !== undefined && !newer(version, seen.metadata?.resourceVersion);
    if (shown) this.#written.delete(key);
    else this.#written.set(key, { object, version, at: Date.now() });
  }

  get(key: string): T | undefined {
    const w = this.#written.get(key);
    if (w !== undefined) return w.object ?? undefined;
    return this.#items.get(key);
  }

  /** The informer's objects (without the controller's newer writes). */
  values(): IterableIterator<T> {
    return this.#items.values();
  }

  get size(): number {
    return this.#items.size;
  }
}
