// Which user name and password to give which camera, from the Discovery's
// resolved properties: ONVIF_CREDENTIALS (a YAML or JSON map of camera UUID
// to {username, password}) first, then ONVIF_USERNAME / ONVIF_PASSWORD for
// every other camera. Pure. Errors name the entry, never a value.
import { parseJsonOrYaml } from '../../src/util/yaml.ts';
import { normalEndpoint } from './camera-table.ts';
import type { Credentials } from './ws-security.ts';

/** Entries of ONVIF_CREDENTIALS read at most. */
const MAX_ENTRIES = 4096;

export interface CredentialsBook {
  /** The credentials for a camera's UUID (any spelling), or undefined: call it unauthenticated. */
  forCamera(uuid: string): Credentials | undefined;
  /** Why part of ONVIF_CREDENTIALS was not used, one line each; empty when all was. */
  problems: string[];
}

/** The credentials book of a Discovery's resolved properties. */
export function credentialsBook(secrets: Record<string, string>): CredentialsBook {
  const problems: string[] = [];
  const byUuid = new Map<string, Credentials>();
  const user = secrets.ONVIF_USERNAME;
  const fallback =
    user !== undefined && user !== ''
      ? { username: user, password: secrets.ONVIF_PASSWORD ?? '' }
      : undefined;
  const text = secrets.ONVIF_CREDENTIALS;
  if (text !== undefined && text.trim() !== '') {
    let map: unknown;
    try {
      map = parseJsonOrYaml(text, { maxAliasCount: 0 });
    } catch (err) {
      problems.push(`ONVIF_CREDENTIALS: ${(err as Error).message}`);
    }
    if (map !== undefined && (typeof map !== 'object' || map === null || Array.isArray(map))) {
      problems.push('ONVIF_CREDENTIALS: must be a map of camera UUID to {username, password}');
    } else if (map !== undefined) {
      for (const [key, value] of Object.entries(map).slice(0, MAX_ENTRIES)) {
        const { uuid, endpoint } = normalEndpoint(key);
        const name = JSON.stringify(key.slice(0, 64));
        if (uuid === endpoint) {
          problems.push(`ONVIF_CREDENTIALS: key ${name} is not a UUID`);
          continue;
        }
        const v = value as { username?: unknown; password?: unknown } | null;
        if (typeof v?.username !== 'string' || typeof v.password !== 'string') {
          problems.push(`ONVIF_CREDENTIALS: ${name} needs a string username and password`);
          continue;
        }
        byUuid.set(uuid, { username: v.username, password: v.password });
      }
    }
  }
  return {
    forCamera: (uuid) => byUuid.get(normalEndpoint(uuid).uuid) ?? fallback,
    problems,
  };
}
