import { UsageError } from './errors.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration flag as kubectl and client-go spell them ("300ms", "90s", "5m",
 * "1h30m"; a bare number is seconds), in milliseconds within [min, max].
 */
export function durationFlag(flag: string, text: string, minMs: number, maxMs: number): number {
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else if (/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) {
    ms = 0;
    for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g))
      ms += Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000);
  } else throw new UsageError(`--${flag}: '${text.slice(0, 40)}' is not a duration (e.g. 30s, 5m)`);
  if (ms < minMs || ms > maxMs)
    throw new UsageError(`--${flag} must be between ${minMs / 1000} s and ${maxMs / 1000} s`);
  return Math.round(ms);
}
