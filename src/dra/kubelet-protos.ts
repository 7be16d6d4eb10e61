// The kubelet's gRPC services from our .proto files (proto/), for the plugin
// and for tests that play the kubelet. Fields keep their proto names (snake_case).
import path from 'node:path';
import { grpcService, loadProtos } from '../util/grpc-services.ts';

const dir = path.join(import.meta.dirname, 'proto');
const root = loadProtos(
  [path.join(dir, 'dra-v1.proto'), path.join(dir, 'pluginregistration-v1.proto')],
  { keepCase: true },
);

/** k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin */
export const DRA_PLUGIN_SERVICE = grpcService(root, 'k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin');
/** pluginregistration.Registration */
export const REGISTRATION_SERVICE = grpcService(root, 'pluginregistration.Registration');
/** What a DRA plugin lists in supported_versions for the v1 service. */
export const DRA_PLUGIN_VERSION = 'v1.DRAPlugin';
/** PluginInfo.type of a DRA driver. */
export const DRA_PLUGIN_TYPE = 'DRAPlugin';

export interface WireClaim {
  namespace: string;
  uid: string;
  name: string;
}
export interface WireDevice {
  request_names: string[];
  pool_name: string;
  device_name: string;
  cdi_device_ids: string[];
}
export interface PrepareRequest {
  claims: WireClaim[];
}
export interface PrepareResponse {
  claims: Record<string, { devices: WireDevice[]; error: string }>;
}
export interface UnprepareResponse {
  claims: Record<string, { error: string }>;
}
export interface PluginInfo {
  type: string;
  name: string;
  endpoint: string;
  supported_versions: string[];
}
