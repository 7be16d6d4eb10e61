import { canonicalJson } from '../src/util/canonical-json.ts';
import type { DiscoveredDevice } from './handler.ts';

/**
 * Yields each list from `lists` only when it differs from the one before, so
 * that a handler that polls still emits only changes.
 */
export async function* onlyChanges(
  lists: AsyncIterable<DiscoveredDevice[]>,
): AsyncGenerator<DiscoveredDevice[]> {
  let last: string | undefined;
  for await (const list of lists) {
    const canonical = canonicalJson(
      [...list].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    );
    if (canonical === last) continue;
    last = canonical;
    yield list;
  }
}
