// What the controller keeps of each object it watches, applied as the
// informers decode them (and to the answers of its writes). The API server's
// managedFields are often larger than the object itself, and the controller
// never reads them; with 10,000 Devices they were most of its heap.
import type { Device, DeviceSlice, Discovery, ObjectMeta } from '../api/types.ts';
import type { NodeObject } from './node-readiness.ts';

/** Metadata as the API server sends it: with the field managers' bookkeeping. */
type ServedMeta = ObjectMeta & { managedFields?: unknown };

function withoutManagedFields(metadata: ServedMeta): ObjectMeta {
  if (metadata.managedFields === undefined) return metadata;
  const copy = { ...metadata };
  delete copy.managedFields;
  return copy;
}

/** Without managedFields and annotations, for objects the controller never writes whole. */
function withoutBookkeeping(metadata: ServedMeta): ObjectMeta {
  if (metadata.managedFields === undefined && metadata.annotations === undefined) return metadata;
  const copy = { ...metadata };
  delete copy.managedFields;
  delete copy.annotations;
  return copy;
}

/**
 * A Device without managedFields. Everything else stays: the controller
 * replaces a changed Device with its cached copy (annotations included), and
 * the API server keeps the stored managedFields of an update that sends none.
 */
export function slimDevice(device: Device): Device {
  const metadata = withoutManagedFields(device.metadata);
  return metadata === device.metadata ? device : { ...device, metadata };
}

/** A Discovery without managedFields and annotations (kubectl's last-applied copy): only its status is written. */
export function slimDiscovery(discovery: Discovery): Discovery {
  const metadata = withoutBookkeeping(discovery.metadata);
  return metadata === discovery.metadata ? discovery : { ...discovery, metadata };
}

/** A DeviceSlice without managedFields and annotations: the fold reads its spec, deletion and name. */
export function slimSlice(slice: DeviceSlice): DeviceSlice {
  const metadata = withoutBookkeeping(slice.metadata);
  return metadata === slice.metadata ? slice : { ...slice, metadata };
}

/** What a Node is to the controller: its name, version and Ready condition (not its images, addresses, capacity...). */
export function slimNode(node: NodeObject): NodeObject {
  const served = node.metadata;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  return {
    metadata: {
      name: served.name,
      ...(served.resourceVersion !== undefined ? { resourceVersion: served.resourceVersion } : {}),
    },
    ...(ready !== undefined
      ? {
          status: {
            conditions: [
              {
                type: ready.type,
                status: ready.status,
                ...(ready.lastTransitionTime !== undefined
                  ? { lastTransitionTime: ready.lastTransitionTime }
                  : {}),
              },
            ],
          },
        }
      : {}),
  };
}
