/** Which objects of which resource a request is about. */
export interface ResourceRef {
  /** API group; "" or undefined for the core group (/api/v1). */
  group?: string;
  version: string;
  /** Lower-case plural resource name, e.g. "devices", "secrets". */
  plural: string;
  /** Undefined: cluster-scoped, or every namespace for a list. */
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** The URL path of a resource collection or object, e.g. /apis/g/v1/namespaces/ns/devices/x/status. */
export function resourcePath(ref: ResourceRef): string {
  const seg = encodeURIComponent;
  let p =
    ref.group === undefined || ref.group === ''
      ? `/api/${seg(ref.version)}`
      : `/apis/${seg(ref.group)}/${seg(ref.version)}`;
  if (ref.namespace !== undefined) p += `/namespaces/${seg(ref.namespace)}`;
  p += `/${seg(ref.plural)}`;
  if (ref.name !== undefined) p += `/${seg(ref.name)}`;
  if (ref.subresource !== undefined) p += `/${seg(ref.subresource)}`;
  return p;
}
