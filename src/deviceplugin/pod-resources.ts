// Which of this node's pods hold which device ids, from the kubelet's
// pod-resources API (List): how stale slot claims are found.
import { heldKey, type Held } from './claims.ts';
import { podResourcesService, type ListPodResourcesResponse } from './protos.ts';
import { unaryCall } from './unary-call.ts';

/** A node with many pods answers with a few MB; more than this is refused. */
const MAX_LIST_BYTES = 16 * 1024 * 1024;

/** The ids held by pods, for the resources `ours` accepts: `${resource} ${id}` -> namespace/pod. */
export async function heldDevices(
  socket: string,
  ours: (resource: string) => boolean,
  signal?: AbortSignal,
): Promise<Held> {
  const res = await unaryCall<ListPodResourcesResponse>(
    socket,
    podResourcesService,
    'List',
    {},
    {
      maxReceiveBytes: MAX_LIST_BYTES,
      ...(signal ? { signal } : {}),
    },
  );
  const held = new Map<string, string>();
  for (const pod of res.podResources) {
    for (const container of pod.containers) {
      for (const d of container.devices) {
        if (!ours(d.resourceName)) continue;
        for (const id of d.deviceIds)
          held.set(heldKey(d.resourceName, id), `${pod.namespace}/${pod.name}`);
      }
    }
  }
  return held;
}
