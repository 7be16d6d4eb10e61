// The kubelet's device plugin and pod-resources gRPC services, from our
// .proto files (proto/); field names are camelCased.
import path from 'node:path';
import { grpcService, loadProtos } from '../util/grpc-services.ts';

/** The published API versions this plugin speaks. */
export const DEVICE_PLUGIN_VERSION = 'v1beta1';
export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';

const PROTO_DIR = path.join(import.meta.dirname, 'proto');

const devicePluginRoot = loadProtos([path.join(PROTO_DIR, 'deviceplugin-v1beta1.proto')]);
const podResourcesRoot = loadProtos([path.join(PROTO_DIR, 'podresources-v1.proto')]);

/** v1beta1.Registration: the kubelet's, on kubelet.sock. */
export const registrationService = grpcService(devicePluginRoot, 'v1beta1.Registration');
/** v1beta1.DevicePlugin: ours, one server per resource. */
export const devicePluginService = grpcService(devicePluginRoot, 'v1beta1.DevicePlugin');
/** v1.PodResourcesLister: the kubelet's, on the pod-resources socket. */
export const podResourcesService = grpcService(podResourcesRoot, 'v1.PodResourcesLister');

// The messages as handlers see them (protobufjs camelCases the field names).
export interface DevicePluginOptions {
  preStartRequired: boolean;
  getPreferredAllocationAvailable: boolean;
}
export interface RegisterRequest {
  version: string;
  endpoint: string;
  resourceName: string;
  options?: DevicePluginOptions;
}
export interface PluginDevice {
  ID: string;
  health: string;
}
export interface ListAndWatchResponse {
  devices: PluginDevice[];
}
export interface ContainerPreferredAllocationRequest {
  availableDeviceIDs: string[];
  mustIncludeDeviceIDs: string[];
  allocationSize: number;
}
export interface PreferredAllocationRequest {
  containerRequests: ContainerPreferredAllocationRequest[];
}
export interface PreferredAllocationResponse {
  containerResponses: { deviceIDs: string[] }[];
}
export interface AllocateRequest {
  containerRequests: { devicesIds: string[] }[];
}
export interface Mount {
  containerPath: string;
  hostPath: string;
  readOnly: boolean;
}
export interface DeviceSpec {
  containerPath: string;
  hostPath: string;
  permissions: string;
}
export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: Mount[];
  devices: DeviceSpec[];
  annotations: Record<string, string>;
}
export interface AllocateResponse {
  containerResponses: ContainerAllocateResponse[];
}
export interface ListPodResourcesResponse {
  podResources: {
    name: string;
    namespace: string;
    containers: { name: string; devices: { resourceName: string; deviceIds: string[] }[] }[];
  }[];
}
