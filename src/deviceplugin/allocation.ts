// What a container is given for the devices the kubelet allocated to it: env,
// device nodes and mounts. Pure: the plugin has already claimed the slots.
import type { DeviceFile, HostMount } from '../api/types.ts';
import { deviceTopicPrefix } from '../dataplane/topics.ts';
import type { ContainerAllocateResponse, DeviceSpec, Mount } from './protos.ts';

/** A device as the agent sees it on this node. */
export interface VisibleDevice {
  namespace: string;
  /** The Device's name. */
  name: string;
  discovery: string;
  /** Slots: how many pods may use it at once. */
  capacity: number;
  properties: Readonly<Record<string, string>>;
  deviceNodes?: readonly DeviceFile[];
  mounts?: readonly HostMount[];
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The response for one container. With one device its properties are set
 * under their own names; with several, each name gets the device's index
 * (`_0`, `_1`, ...), in the order of EDGEBRIDGE_DEVICES.
 */
export function containerResponse(
  devices: readonly VisibleDevice[],
  brokerUrl: string,
): ContainerAllocateResponse {
  const distinct = [...new Map(devices.map((d) => [`${d.namespace}/${d.name}`, d])).values()];
  const envs: Record<string, string> = {
    EDGEBRIDGE_BROKER_URL: brokerUrl,
    EDGEBRIDGE_DEVICES: distinct.map((d) => d.name).join(','),
  };
  const byPath = new Map<string, DeviceSpec>();
  const mounts = new Map<string, Mount>();
  distinct.forEach((device, i) => {
    const suffix = distinct.length === 1 ? '' : `_${i}`;
    for (const [key, value] of Object.entries(device.properties)) {
      // Handlers write ENV_STYLE keys; one that is not cannot be an env var.
      if (ENV_NAME.test(key)) envs[`${key}${suffix}`] = value;
    }
    envs[`EDGEBRIDGE_DEVICE${suffix}`] = device.name;
    envs[`EDGEBRIDGE_DEVICE_NAMESPACE${suffix}`] = device.namespace;
    envs[`EDGEBRIDGE_TOPIC_PREFIX${suffix}`] = deviceTopicPrefix(device.namespace, device.name);
    for (const node of device.deviceNodes ?? []) {
      const containerPath = node.containerPath ?? node.hostPath;
      byPath.set(containerPath, {
        hostPath: node.hostPath,
        containerPath,
        permissions: node.permissions ?? 'rw',
      });
    }
    for (const m of device.mounts ?? []) {
      mounts.set(m.containerPath, {
        hostPath: m.hostPath,
        containerPath: m.containerPath,
        readOnly: m.readOnly ?? false,
      });
    }
  });
  return { envs, devices: [...byPath.values()], mounts: [...mounts.values()], annotations: {} };
}
