// User input echoed back in an error or a log line, bounded: a 100 KB
// selector or flag value must not come back whole (a wall of text, a log
// flood, or a way to smuggle content into logs).

/** How many characters of a user's value an error repeats by default. */
export const QUOTE_MAX_CHARS = 64;

/** The value as a JSON string, cut to its first `max` characters (code points) and "…" if longer. */
export function quote(value: string, max = QUOTE_MAX_CHARS): string {
  return JSON.stringify(clip(value, max));
}

/** The value cut to its first `max` characters (code points), with "…" if it was longer. */
export function clip(value: string, max = QUOTE_MAX_CHARS): string {
  // Cheap for huge strings: never split more than max + 1 code points.
  if (value.length <= max) return value;
  const head: string[] = [];
  for (const c of value) {
    if (head.length === max) return head.join('') + '…';
    head.push(c);
  }
  return value;
}
