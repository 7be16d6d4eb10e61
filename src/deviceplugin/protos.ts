// gRPC service definitions for grpc-js, built from our .proto files with
// protobufjs (already a dependency): one protobuf library in the tree, and
// the 20 lines @grpc/proto-loader would add are written here instead.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import type { ServiceDefinition } from '@grpc/grpc-js';

/** The published API versions this plugin speaks. */
export const DEVICE_PLUGIN_VERSION = 'v1beta1';
export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';

const PROTO_DIR = path.join(import.meta.dirname, 'proto');

function load(file: string): protobuf.Root {
  const root = new protobuf.Root();
  protobuf.parse(readFileSync(path.join(PROTO_DIR, file), 'utf8'), root, { keepCase: false });
  root.resolveAll();
  return root;
}

/**
 * A grpc-js service definition for one service of a root: messages are
 * decoded into plain objects (camelCase fields, defaults filled in), so that
 * handlers see the same shape whatever the peer omitted.
 */
function service(root: protobuf.Root, name: string): ServiceDefinition {
  const svc = root.lookupService(name);
  const def: Record<string, ServiceDefinition[string]> = {};
  for (const method of svc.methodsArray) {
    const req = method.resolvedRequestType;
    const res = method.resolvedResponseType;
    if (req === null || res === null) throw new Error(`${name}.${method.name}: unresolved types`);
    def[method.name] = {
      path: `/${svc.fullName.slice(1)}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: encoder(req),
      requestDeserialize: decoder(req),
      responseSerialize: encoder(res),
      responseDeserialize: decoder(res),
      originalName: method.name,
    };
  }
  return def as ServiceDefinition;
}

function encoder(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    const bytes = type.encode(type.fromObject(value)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function decoder(type: protobuf.Type): (bytes: Buffer) => object {
  return (bytes) =>
    type.toObject(type.decode(bytes), {
      defaults: true,
      arrays: true,
      objects: true,
      longs: Number,
    });
}

const devicePluginRoot = load('deviceplugin-v1beta1.proto');
const podResourcesRoot = load('podresources-v1.proto');

/** v1beta1.Registration: the kubelet's, on kubelet.sock. */
export const registrationService = service(devicePluginRoot, 'v1beta1.Registration');
/** v1beta1.DevicePlugin: ours, one server per resource. */
export const devicePluginService = service(devicePluginRoot, 'v1beta1.DevicePlugin');
/** v1.PodResourcesLister: the kubelet's, on the pod-resources socket. */
export const podResourcesService = service(podResourcesRoot, 'v1.PodResourcesLister');

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
