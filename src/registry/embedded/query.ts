// A Query answered locally: namespace, label selector and field selector, as
// the API server would, with results sorted by namespace then name.
import type { ObjectMeta } from '../../api/types.ts';
import type { Query } from '../registry.ts';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from '../selectors.ts';

/** Objects matching the query, sorted by namespace then name. Throws a SelectorError for a bad selector. */
export function selectObjects<T extends { metadata: ObjectMeta }>(
  objects: readonly T[],
  query: Query,
  supportedFields: readonly string[],
  fieldsOf: (object: T) => Record<string, string>,
): T[] {
  const labels = parseLabelSelector(query.labelSelector ?? '');
  const fields = parseFieldSelector(query.fieldSelector ?? '', supportedFields);
  return objects
    .filter(
      (o) =>
        (query.namespace === undefined ||
          (o.metadata.namespace ?? 'default') === query.namespace) &&
        matchesLabels(labels, o.metadata.labels) &&
        matchesFields(fields, fieldsOf(o)),
    )
    .sort((a, b) => compareKeys(a.metadata, b.metadata));
}

function compareKeys(a: ObjectMeta, b: ObjectMeta): number {
  const an = a.namespace ?? 'default';
  const bn = b.namespace ?? 'default';
  if (an !== bn) return an < bn ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
