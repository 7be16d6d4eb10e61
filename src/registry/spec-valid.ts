// A Discovery whose spec does not fit the schema (the embedded registry's
// config file, edited badly; or an object stored under an older CRD) stays
// listed, marked by a SpecValid=False condition, instead of vanishing: a
// Discovery that vanished would have its Devices deleted at once, while an
// invalid one keeps them for its grace period and runs no handler.
import type { Discovery, DiscoverySpec } from '../api/types.ts';

/** The condition type that marks a Discovery whose spec is not valid. */
export const SPEC_VALID = 'SpecValid';

/** The handler name of a Discovery, or '' if its spec has none (an invalid one). */
export function handlerNameOf(d: Discovery): string {
  const spec = d.spec as Partial<DiscoverySpec> | null | undefined;
  const name = typeof spec === 'object' && spec !== null ? spec.handler?.name : undefined;
  return typeof name === 'string' ? name : '';
}

/**
 * Why the Discovery's spec cannot be run, or undefined if it can: a
 * SpecValid=False condition of its current generation, or a spec without
 * even a handler name.
 */
export function specProblem(d: Discovery): string | undefined {
  const marked = d.status?.conditions?.find(
    (c) =>
      c.type === SPEC_VALID &&
      c.status === 'False' &&
      (c.observedGeneration === undefined || c.observedGeneration === d.metadata.generation),
  );
  if (marked !== undefined) return marked.message;
  if (handlerNameOf(d) === '') return 'spec.handler.name: is required';
  return undefined;
}
