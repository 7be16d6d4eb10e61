// The Discovery's Akri-style filters as one predicate over camera records. Pure.
import type { CameraRecord } from './camera-table.ts';
import { normalEndpoint } from './camera-table.ts';
import type { FilterList, OnvifDetails } from './details.ts';

/** `aa:bb:...` in lower case, for either separator. */
export function normalMac(mac: string): string {
  return mac.toLowerCase().replace(/-/g, ':');
}

/** Whether `values` pass `filter`: Include needs one of them listed, Exclude none. */
function passes(filter: FilterList | undefined, values: readonly string[]): boolean {
  if (filter === undefined) return true;
  const hit = values.some((v) => filter.items.includes(v));
  return filter.action === 'Include' ? hit : !hit;
}

/**
 * The filters of `details` as a predicate; `macOf` gives a camera's MAC
 * address where the node knows it (its neighbour table). A camera whose MAC is
 * unknown passes an Exclude list and fails an Include list.
 */
export function cameraFilter(
  details: OnvifDetails,
): (camera: CameraRecord, macOf: (ip: string) => string | undefined) => boolean {
  const norm = (f: FilterList | undefined, by: (s: string) => string): FilterList | undefined =>
    f === undefined ? f : { ...f, items: f.items.map(by) };
  const macs = norm(details.macAddresses, normalMac);
  const uuids = norm(details.uuids, (s) => normalEndpoint(s).uuid);
  return (camera, macOf) => {
    if (!passes(details.ipAddresses, [camera.serviceUrl.hostname])) return false;
    if (!passes(uuids, [camera.uuid])) return false;
    if (!passes(details.scopes, camera.scopes)) return false;
    if (macs !== undefined) {
      const mac = macOf(camera.from);
      if (!passes(macs, mac === undefined ? [] : [normalMac(mac)])) return false;
    }
    return true;
  };
}
