// One DNS-SD service instance as a device: properties, and whether the
// Discovery's filters select it. Pure.
import { globRegExp } from '../../src/util/glob.ts';
import { MAX_PROPERTIES } from '../device-schema.ts';
import type { DiscoveredDevice } from '../handler.ts';
import type { MdnsDetails } from './details.ts';
import type { Instance } from './record-cache.ts';

/** TXT values longer than this are cut: a property is for a workload's environment. */
export const MAX_TXT_VALUE = 1024;
const TXT_PREFIX = 'MDNS_TXT_';
const MAX_KEY = 128;
/** The fixed properties leave this many for TXT entries. */
const MAX_TXT_PROPERTIES = MAX_PROPERTIES - 5;

/** Control characters would make a value unsafe to print or log; they become `?`. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;
const clean = (s: string): string => s.replace(CONTROL, '?');

/** `MDNS_TXT_<KEY>`: upper-cased, every character outside [A-Z0-9_] made `_`. */
export function txtPropertyName(key: string): string {
  return (TXT_PREFIX + key.toUpperCase().replace(/[^A-Z0-9_]/g, '_')).slice(0, MAX_KEY);
}

export function toDevice(instance: Instance): DiscoveredDevice {
  const properties: Record<string, string> = {
    MDNS_NAME: clean(instance.name.replace(/\\\./g, '.')),
    MDNS_TYPE: instance.type,
    MDNS_HOST: clean(instance.host),
    MDNS_PORT: String(instance.port),
    MDNS_ADDRESSES: instance.addresses.join(','),
  };
  let txt = 0;
  for (const [key, value] of instance.txt) {
    if (txt >= MAX_TXT_PROPERTIES) break;
    const name = txtPropertyName(key);
    // Two keys that sanitise alike (`a-b`, `a.b`): the first one stands.
    if (Object.hasOwn(properties, name)) continue;
    properties[name] = clean(value.slice(0, MAX_TXT_VALUE));
    txt += 1;
  }
  return { id: instance.fqdn.replace(/\\\./g, '.'), properties };
}

/** The Discovery's nameFilter and txtFilter as one predicate. */
export function instanceFilter(details: MdnsDetails): (instance: Instance) => boolean {
  const include = (details.nameFilter?.include ?? []).map((p) =>
    globRegExp(p, { ignoreCase: true }),
  );
  const exclude = (details.nameFilter?.exclude ?? []).map((p) =>
    globRegExp(p, { ignoreCase: true }),
  );
  const txt = Object.entries(details.txtFilter ?? {}).map(
    ([k, p]) => [k.toLowerCase(), globRegExp(p)] as const,
  );
  return (instance) => {
    const name = instance.name.replace(/\\\./g, '.');
    if (include.length > 0 && !include.some((re) => re.test(name))) return false;
    if (exclude.some((re) => re.test(name))) return false;
    for (const [k, re] of txt) {
      const entry = instance.txt.find(([key]) => key.toLowerCase() === k);
      if (entry === undefined || !re.test(entry[1])) return false;
    }
    return true;
  };
}
