/**
 * A glob pattern (`*` any run of characters, `?` one character, everything
 * else literal) as an anchored RegExp; case-insensitive when asked, as DNS
 * names are.
 */
export function globRegExp(pattern: string, opts: { ignoreCase?: boolean } = {}): RegExp {
  let source = '';
  for (const ch of pattern) {
    if (ch === '*') source += '[^]*';
    else if (ch === '?') source += '[^]';
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, opts.ignoreCase === true ? 'iu' : 'u');
}
