// The device plugin's failures, each a class with a stable code; the plugin
// server maps them onto the gRPC status the kubelet is answered with.

/** The kubelet asked for a device id this resource does not offer. */
export class UnknownDeviceIdError extends Error {
  readonly code = 'EDGEBRIDGE_DEVICE_PLUGIN_UNKNOWN_ID';
  constructor(resource: string, id: string) {
    super(`${resource} has no device ${JSON.stringify(id.slice(0, 80))}`);
    this.name = 'UnknownDeviceIdError';
  }
}

/** A shared device's slot is held by another node (or through the other resource). */
export class SlotTakenError extends Error {
  readonly code = 'EDGEBRIDGE_DEVICE_PLUGIN_SLOT_TAKEN';
  constructor(device: string, slot: number, holder: string) {
    super(`slot ${slot} of Device ${device} is taken (${holder})`);
    this.name = 'SlotTakenError';
  }
}

/** The device cannot be given out now: it left this node, or its Device is not readable yet. */
export class DeviceUnavailableError extends Error {
  readonly code = 'EDGEBRIDGE_DEVICE_PLUGIN_UNAVAILABLE';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DeviceUnavailableError';
  }
}

/** A path where a Unix socket belongs holds something else. */
export class NotASocketError extends Error {
  readonly code = 'EDGEBRIDGE_DEVICE_PLUGIN_NOT_A_SOCKET';
  constructor(file: string) {
    super(`${file} exists and is not a Unix socket`);
    this.name = 'NotASocketError';
  }
}

/** The kubelet refused a registration, or could not be asked. */
export class RegistrationError extends Error {
  readonly code = 'EDGEBRIDGE_DEVICE_PLUGIN_REGISTRATION';
  constructor(resource: string, message: string, options?: ErrorOptions) {
    super(`registering ${resource} with the kubelet: ${message}`, options);
    this.name = 'RegistrationError';
  }
}

/** Work asked of a device plugin after close(). */
export class DevicePluginClosedError extends Error {
  readonly code = 'EDGEBRIDGE_DEVICE_PLUGIN_CLOSED';
  constructor() {
    super('the device plugin is closed');
    this.name = 'DevicePluginClosedError';
  }
}
