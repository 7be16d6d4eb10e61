import { createHash } from 'node:crypto';

/** Long enough to read, short enough for any name made from it. */
const MAX_ID_LENGTH = 96;
const HASH_LENGTH = 10;
/** Characters kept as they are; anything else (`/`, `+`, `#`, NUL, spaces, ...) becomes `_`. */
const UNSAFE = /[^A-Za-z0-9._:-]/g;

/**
 * The Device id for a sensor's raw key (whatever its announcement said):
 * `<source>:<key>` with unsafe characters replaced and the length capped; if
 * either changed anything, a hash of the raw form is appended, so that two
 * keys that read alike stay two devices and the id stays stable.
 */
export function sensorDeviceId(source: string, key: string): string {
  const raw = `${source}:${key}`;
  const safe = raw.replace(UNSAFE, '_');
  if (safe === raw && raw.length <= MAX_ID_LENGTH) return raw;
  const hash = createHash('sha256').update(raw).digest('hex').slice(0, HASH_LENGTH);
  return `${safe.slice(0, MAX_ID_LENGTH - HASH_LENGTH - 1)}-${hash}`;
}
