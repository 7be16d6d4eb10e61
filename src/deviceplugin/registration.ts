// Registering a resource with the kubelet's Registration service (kubelet.sock).
import { RegistrationError } from './errors.ts';
import { DEVICE_PLUGIN_VERSION, registrationService, type RegisterRequest } from './protos.ts';
import { unaryCall } from './unary-call.ts';

/** Tells the kubelet that `resource` is served on `endpoint` (a socket name in its directory). */
export async function register(
  kubeletSocket: string,
  resource: string,
  endpoint: string,
  signal?: AbortSignal,
): Promise<void> {
  const request: RegisterRequest = {
    version: DEVICE_PLUGIN_VERSION,
    endpoint,
    resourceName: resource,
    options: { preStartRequired: false, getPreferredAllocationAvailable: true },
  };
  try {
    await unaryCall(kubeletSocket, registrationService, 'Register', request, {
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    if (signal?.aborted === true) throw signal.reason;
    throw new RegistrationError(resource, (err as Error).message, { cause: err });
  }
}
