/**
 * A Kubernetes MicroTime (RFC 3339 with exactly six fractional digits), as
 * Lease renewTime and Event eventTime need: the API server refuses the three
 * digits of Date.toISOString().
 */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Milliseconds since the epoch of a MicroTime or Time, or undefined when it is not one. */
export function parseMicroTime(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
