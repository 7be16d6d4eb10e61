// MQTT 5 shared subscription filters, `$share/<group>/<filter>` [MQTT-4.8.2]:
// the group name is at least one character without '/', '+' or '#', and the
// filter after it is an ordinary topic filter.

const SHARE_PREFIX = '$share/';

/** A `$share/...` filter read: its group and filter, or why it is malformed. */
export type SharedFilter =
  { ok: true; group: string; filter: string } | { ok: false; reason: string };

/** Whether a subscription's topic asks for a shared subscription. */
export function isSharedFilter(topic: string): boolean {
  return topic.startsWith(SHARE_PREFIX);
}

/** Reads `$share/<group>/<filter>`; a malformed one (SUBACK 0x8F) says why. */
export function parseSharedFilter(topic: string): SharedFilter {
  if (!isSharedFilter(topic)) return { ok: false, reason: 'not a shared subscription' };
  const rest = topic.slice(SHARE_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return { ok: false, reason: 'a shared subscription needs a topic filter' };
  const group = rest.slice(0, slash);
  const filter = rest.slice(slash + 1);
  if (group === '') return { ok: false, reason: 'empty share name' };
  if (/[+#]/.test(group)) return { ok: false, reason: "a share name may not contain '+' or '#'" };
  const problem = filterProblem(filter);
  return problem === undefined ? { ok: true, group, filter } : { ok: false, reason: problem };
}

/** Why `filter` is not a valid MQTT topic filter, if it is not. */
function filterProblem(filter: string): string | undefined {
  if (filter === '') return 'empty topic filter';
  if (filter.includes('\u0000')) return 'topic filter contains NUL';
  const levels = filter.split('/');
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1))
      return "'#' must be a whole level at the end of a filter";
    if (level.includes('+') && level !== '+') return "'+' must be a whole level";
  }
  return undefined;
}
