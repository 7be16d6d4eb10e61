import { topicMatches } from '../../src/dataplane/topics.ts';
import type { Source } from './index.ts';

/**
 * The filters the sources want, as subscriptions on the sensor broker, and
 * which sources a message's topic is for. Exact topics (most state topics)
 * are looked up, so thousands of sensors cost no scan per message.
 */
export class SubscriptionSet {
  readonly #sources: readonly Source[];
  readonly #subscribed = new Set<string>();
  #exact = new Map<string, Source[]>();
  #wildcards: { filter: string; source: Source }[] = [];
  #dirty = true;

  constructor(sources: readonly Source[]) {
    this.#sources = sources;
  }

  /** Whether the sources' filters may have changed since the last sync(). */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** An announcement changed: the filters may have. */
  touch(): void {
    this.#dirty = true;
  }

  /** The filters to subscribe to and to drop now. */
  sync(): { add: string[]; remove: string[] } {
    this.#dirty = false;
    const exact = new Map<string, Source[]>();
    const wildcards: { filter: string; source: Source }[] = [];
    const wanted = new Set<string>();
    for (const source of this.#sources) {
      for (const filter of source.filters()) {
        wanted.add(filter);
        if (/[+#]/.test(filter)) wildcards.push({ filter, source });
        else {
          const list = exact.get(filter);
          if (list === undefined) exact.set(filter, [source]);
          else if (!list.includes(source)) list.push(source);
        }
      }
    }
    this.#exact = exact;
    this.#wildcards = wildcards;
    const add = [...wanted].filter((f) => !this.#subscribed.has(f));
    const remove = [...this.#subscribed].filter((f) => !wanted.has(f));
    for (const f of add) this.#subscribed.add(f);
    for (const f of remove) this.#subscribed.delete(f);
    return { add, remove };
  }

  /** The sources whose filters match `topic`, each once. */
  sourcesFor(topic: string): Source[] {
    const found = [...(this.#exact.get(topic) ?? [])];
    for (const { filter, source } of this.#wildcards)
      if (!found.includes(source) && topicMatches(filter, topic)) found.push(source);
    return found;
  }
}
