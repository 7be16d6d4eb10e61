// udev's pattern syntax (man udev, "Operators" / pattern matching): `*`, `?`,
// `[...]` (with `!` or `^` to negate and `a-z` ranges) and `|` between
// alternatives. Everything else is literal.

/** A compiled pattern: whether a whole value matches it. */
export type GlobMatcher = (value: string) => boolean;

/** Compiles a udev pattern; `[` without its `]` is literal, as in fnmatch(3). */
export function compileGlob(pattern: string): GlobMatcher {
  const alternatives = pattern.split('|').map(toRegExpSource);
  const re = new RegExp(`^(?:${alternatives.join('|')})$`, 'su');
  return (value) => re.test(value);
}

/** Whether a pattern has anything but literal characters. */
export function isGlob(pattern: string): boolean {
  return /[*?[|]/.test(pattern);
}

const escape = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
/** Inside a class only these are special (with the `v`-less `u` flag, `\-` is allowed there). */
const escapeInClass = (c: string): string => c.replace(/[\\\]^[-]/g, '\\$&');

function toRegExpSource(pattern: string): string {
  let out = '';
  const chars = Array.from(pattern); // code points: a class may hold any character
  for (let i = 0; i < chars.length; i += 1) {
    const c = chars[i] ?? '';
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const close = classEnd(chars, i);
      if (close === -1) {
        out += '\\[';
        continue;
      }
      let body = chars.slice(i + 1, close);
      let negate = false;
      if (body[0] === '!' || body[0] === '^') {
        negate = true;
        body = body.slice(1);
      }
      // Keep ranges (a-z) and escape every other character.
      const parts = body.map((b, k) =>
        b === '-' && k > 0 && k < body.length - 1 ? '-' : escapeInClass(b),
      );
      out += `[${negate ? '^' : ''}${parts.join('')}]`;
      i = close;
    } else out += escape(c);
  }
  return out;
}

/** Index of the `]` closing the class opened at `open` (a `]` right after `[` or `[!` is literal), or -1. */
function classEnd(chars: string[], open: number): number {
  let i = open + 1;
  if (chars[i] === '!' || chars[i] === '^') i += 1;
  if (chars[i] === ']') i += 1;
  for (; i < chars.length; i += 1) if (chars[i] === ']') return i;
  return -1;
}
