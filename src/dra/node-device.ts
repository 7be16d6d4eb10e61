import type { DeviceFile, HostMount } from '../api/types.ts';

/**
 * One device this node sees, as the agent feeds it to DRA: the Device's
 * identity and spec, and this node's device files and mounts. The agent's
 * DeviceView has this shape.
 */
export interface NodeDevice {
  /** The Device's namespace and name. */
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  spec: {
    discovery: string;
    handler: string;
    shared: boolean;
    id: string;
    /** Untrusted strings from the handler (ENV_STYLE keys). */
    properties?: Record<string, string>;
  };
  node: { deviceNodes?: DeviceFile[]; mounts?: HostMount[] };
}
