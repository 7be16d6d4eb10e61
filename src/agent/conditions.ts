import type { Condition } from '../api/types.ts';

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/**
 * `conditions` with `next` set; the transition time moves only when the status
 * changes. Returns undefined when nothing would change, so the caller writes nothing.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  next: ConditionInput,
  now = new Date(),
): Condition[] | undefined {
  const list = conditions ?? [];
  const current = list.find((c) => c.type === next.type);
  if (
    current !== undefined &&
    current.status === next.status &&
    current.reason === next.reason &&
    current.message === next.message &&
    current.observedGeneration === next.observedGeneration
  ) {
    return undefined;
  }
  const lastTransitionTime =
    current !== undefined && current.status === next.status
      ? current.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return [...list.filter((c) => c.type !== next.type), { ...next, lastTransitionTime }];
}
