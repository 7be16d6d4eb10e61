// The DRA driver's name and the limits of resource.k8s.io/v1 that shape what
// it publishes (k8s.io/api/resource/v1 validation).

/** The driver name in ResourceSlices, DeviceClasses, CDI kinds and the kubelet registration. */
export const DRIVER = 'edgebridge.io';
/** resource.k8s.io/v1: ResourceSlices, DeviceClasses and ResourceClaims. */
export const RESOURCE_API_GROUP = 'resource.k8s.io';
export const RESOURCE_API_VERSION = 'v1';
/** Devices in one ResourceSlice (ResourceSliceMaxDevices). */
export const MAX_SLICE_DEVICES = 128;
/** Attributes and capacities of one device together (ResourceSliceMaxAttributesAndCapacitiesPerDevice). */
export const MAX_DEVICE_ATTRIBUTES = 32;
/** Characters of an attribute's C-identifier name (DeviceMaxIDLength). */
export const MAX_ATTRIBUTE_NAME = 32;
/** Characters of a string or version attribute value (DeviceAttributeMaxValueLength). */
export const MAX_ATTRIBUTE_VALUE = 64;
