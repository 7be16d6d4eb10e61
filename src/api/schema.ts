// OpenAPI v3 schemas of the edgebridge.io/v1alpha1 custom resources: the single
// source of the CRDs in manifests/crds/ (scripts/generate-crds.ts) and, through
// json-schema-to-ts, checked against src/api/types.ts (test/unit/api-schema.test.ts).
//
// Every string, list and map has a size cap: the API server estimates the cost of
// CEL rules from them, and they bound what an agent has to hold in memory.
import { HANDLER_NAMES, MAX_SLICE_DEVICES } from './types.ts';

/** A Kubernetes object name (DNS subdomain) or a key in a Secret or ConfigMap. */
const name = { type: 'string', minLength: 1, maxLength: 253 } as const;
const path = { type: 'string', minLength: 1, maxLength: 4096 } as const;

/** Handler-specific or Kubernetes-typed content that the API server keeps as is. */
const opaqueObject = (description: string) =>
  ({ type: 'object', description, 'x-kubernetes-preserve-unknown-fields': true }) as const;

export const keySelectorSchema = {
  type: 'object',
  description: "A key of a Secret or ConfigMap in the Discovery's own namespace.",
  required: ['name', 'key'],
  properties: {
    name: { ...name, description: 'Name of the Secret or ConfigMap.' },
    key: { ...name, description: 'The key to read.' },
    optional: { type: 'boolean', description: 'If true, a missing object or key is not an error.' },
  },
} as const;

export const discoveryPropertySchema = {
  type: 'object',
  description: 'A named value given to the handler, e.g. credentials of ONVIF cameras.',
  required: ['name'],
  properties: {
    name: { ...name, description: 'Name of the property, as the handler expects it.' },
    value: { type: 'string', maxLength: 8192, description: 'A literal value.' },
    valueFrom: {
      type: 'object',
      description: 'Where to read the value; never copied into Devices, logs or events.',
      properties: {
        secretKeyRef: keySelectorSchema,
        configMapKeyRef: keySelectorSchema,
      },
      'x-kubernetes-validations': [
        {
          rule: 'has(self.secretKeyRef) != has(self.configMapKeyRef)',
          message: 'exactly one of secretKeyRef and configMapKeyRef must be set',
        },
      ],
    },
  },
  'x-kubernetes-validations': [
    {
      rule: 'has(self.value) != has(self.valueFrom)',
      message: 'exactly one of value and valueFrom must be set',
    },
  ],
} as const;

export const labelSelectorSchema = {
  type: 'object',
  description: 'A label selector on Node objects, as in Kubernetes workloads.',
  properties: {
    matchLabels: {
      type: 'object',
      maxProperties: 64,
      additionalProperties: { type: 'string', maxLength: 63 },
    },
    matchExpressions: {
      type: 'array',
      maxItems: 32,
      items: {
        type: 'object',
        required: ['key', 'operator'],
        properties: {
          key: { type: 'string', minLength: 1, maxLength: 317 },
          operator: { type: 'string', enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
          values: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 63 } },
        },
      },
    },
  },
} as const;

export const conditionSchema = {
  type: 'object',
  description: 'A metav1.Condition.',
  required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'],
  properties: {
    type: { type: 'string', minLength: 1, maxLength: 316 },
    status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
    reason: { type: 'string', minLength: 1, maxLength: 1024 },
    message: { type: 'string', maxLength: 32768 },
    lastTransitionTime: { type: 'string', format: 'date-time' },
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
  },
} as const;

/** Conditions keyed by type, so that writers can server-side-apply one condition each. */
const conditions = {
  type: 'array',
  description: 'The latest observations of the object, one per type.',
  maxItems: 32,
  items: conditionSchema,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
} as const;

export const discoverySpecSchema = {
  type: 'object',
  description: 'What to look for, on which nodes, and what to run for each device found.',
  required: ['handler'],
  properties: {
    handler: {
      type: 'object',
      description: 'The discovery handler (protocol) and its settings.',
      required: ['name'],
      properties: {
        name: { type: 'string', enum: HANDLER_NAMES, description: 'The discovery handler.' },
        details: opaqueObject(
          'Handler-specific settings; the handler validates them and reports a DetailsValid condition.',
        ),
      },
    },
    properties: {
      type: 'array',
      description: 'Named values for the handler, literal or from Secrets and ConfigMaps.',
      maxItems: 64,
      items: discoveryPropertySchema,
      'x-kubernetes-validations': [
        {
          rule: 'self.all(p, self.exists_one(q, q.name == p.name))',
          message: 'property names must be unique',
        },
      ],
    },
    nodeSelector: {
      ...labelSelectorSchema,
      description: "Which nodes' agents run this discovery; absent selects every node.",
    },
    capacity: {
      type: 'integer',
      description: 'How many pods may use one device at once.',
      default: 1,
      minimum: 1,
      maximum: 1024,
    },
    intervalSeconds: {
      type: 'integer',
      description: 'Polling interval of handlers that poll.',
      default: 30,
      minimum: 1,
      maximum: 86400,
    },
    gracePeriodSeconds: {
      type: 'integer',
      description: "How long a device may be unseen before this node's entry is removed.",
      default: 60,
      minimum: 0,
      maximum: 86400,
    },
    broker: {
      type: 'object',
      description: 'A workload the controller runs for each device.',
      properties: {
        podSpec: opaqueObject('A PodSpec run as one Pod per device.'),
        jobSpec: opaqueObject('A JobSpec run as one Job per device.'),
      },
      'x-kubernetes-validations': [
        {
          rule: '!(has(self.podSpec) && has(self.jobSpec))',
          message: 'at most one of podSpec and jobSpec may be set',
        },
      ],
    },
    deviceService: opaqueObject('A ServiceSpec for a Service per device.'),
    discoveryService: opaqueObject('A ServiceSpec for one Service over all devices.'),
    uplink: {
      type: 'object',
      description: "Whether and how the devices' data goes to the cloud broker.",
      required: ['enabled'],
      properties: {
        enabled: { type: 'boolean' },
        priority: {
          type: 'integer',
          description: 'Uplink priority, 0 (lowest) to 9.',
          minimum: 0,
          maximum: 9,
        },
        ttlSeconds: {
          type: 'integer',
          description: 'How long a message may wait in the spool before it expires.',
          minimum: 1,
          maximum: 2592000,
        },
      },
    },
  },
} as const;

export const discoveryStatusSchema = {
  type: 'object',
  properties: {
    conditions,
    devices: {
      type: 'integer',
      description: 'Devices currently registered for this Discovery.',
      minimum: 0,
    },
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
  },
} as const;

const deviceFilesSchema = {
  type: 'array',
  description: 'Device files a pod on this node is given.',
  maxItems: 32,
  items: {
    type: 'object',
    required: ['hostPath'],
    properties: {
      hostPath: path,
      containerPath: path,
      permissions: { type: 'string', pattern: '^[rwm]{1,3}$', maxLength: 3 },
    },
  },
} as const;

const hostMountsSchema = {
  type: 'array',
  description: 'Host paths a pod on this node is given.',
  maxItems: 32,
  items: {
    type: 'object',
    required: ['hostPath', 'containerPath'],
    properties: { hostPath: path, containerPath: path, readOnly: { type: 'boolean' } },
  },
} as const;

/** String map of what a workload needs (ENV_STYLE keys); the same bounds on Devices and slices. */
const devicePropertiesSchema = {
  type: 'object',
  description: 'What a workload needs to use the device (ENV_STYLE keys); never secrets.',
  maxProperties: 64,
  additionalProperties: { type: 'string', maxLength: 4096 },
} as const;

export const deviceSpecSchema = {
  type: 'object',
  description: 'One discovered device; written by the agents.',
  required: ['discovery', 'handler', 'shared', 'id', 'capacity'],
  properties: {
    discovery: { ...name, description: 'The Discovery that found the device.' },
    handler: { type: 'string', enum: HANDLER_NAMES, description: 'The discovery handler.' },
    shared: {
      type: 'boolean',
      description: 'True for network devices seen by several nodes; false for node-local ones.',
    },
    id: { type: 'string', minLength: 1, maxLength: 1024, description: "The handler's device id." },
    properties: devicePropertiesSchema,
    capacity: {
      type: 'integer',
      description: 'How many pods may use the device at once.',
      minimum: 1,
      maximum: 1024,
    },
  },
} as const;

export const deviceNodeStatusSchema = {
  type: 'object',
  description: "One node's view of the device; that node's agent owns the entry.",
  required: ['name'],
  properties: {
    name: { ...name, description: 'Node name.' },
    deviceNodes: deviceFilesSchema,
    mounts: hostMountsSchema,
  },
} as const;

export const deviceStatusSchema = {
  type: 'object',
  properties: {
    nodes: {
      type: 'array',
      description: 'The nodes that see the device, keyed by node name.',
      maxItems: 1024,
      items: deviceNodeStatusSchema,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    },
    conditions,
    usage: {
      type: 'object',
      description:
        'Slot number to its claim, "<node>:<resource>", with ":<namespace>/<pod>" once a pod holds it; written by the device plugins, released by the controller when the node is gone.',
      maxProperties: 1024,
      additionalProperties: { type: 'string', maxLength: 512 },
    },
    topics: {
      type: 'object',
      description: "Where the device's data is published on the node broker.",
      required: ['data', 'state', 'events'],
      properties: {
        data: { type: 'string', maxLength: 1024 },
        state: { type: 'string', maxLength: 1024 },
        events: { type: 'string', maxLength: 1024 },
      },
    },
  },
} as const;

/**
 * A name that is also a label value (the slice's edgebridge.io/node and
 * edgebridge.io/discovery labels): a DNS subdomain of at most 63 characters.
 */
const labelValueName = (description: string) =>
  ({
    type: 'string',
    description,
    minLength: 1,
    maxLength: 63,
    pattern: '^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$',
  }) as const;

/** A label key: optional DNS-subdomain prefix and slash, then a name of at most 63 characters. */
const LABEL_KEY =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';

export const sliceDeviceSchema = {
  type: 'object',
  description: 'One device as this node sees it.',
  required: ['id'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 1024, description: "The handler's device id." },
    properties: devicePropertiesSchema,
    labels: {
      type: 'object',
      description: "A few labels for label selectors, copied to the device's Device.",
      maxProperties: 16,
      additionalProperties: {
        type: 'string',
        maxLength: 63,
        pattern: '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$',
      },
      'x-kubernetes-validations': [
        {
          rule: `self.all(k, size(k) <= 317 && k.matches('${LABEL_KEY}'))`,
          message: 'label keys must be valid Kubernetes label keys',
        },
      ],
    },
    deviceNodes: deviceFilesSchema,
    mounts: hostMountsSchema,
  },
} as const;

export const deviceSliceSpecSchema = {
  type: 'object',
  description: "What one node sees now for one Discovery; written by that node's agent only.",
  required: ['node', 'discovery', 'shared', 'devices', 'deviceCount'],
  properties: {
    node: labelValueName(
      'The node whose agent wrote the slice; equal to its edgebridge.io/node label.',
    ),
    discovery: labelValueName(
      'The Discovery, in the same namespace; equal to its edgebridge.io/discovery label.',
    ),
    shared: {
      type: 'boolean',
      description:
        'True for network devices that several nodes may see; false for node-local ones.',
    },
    devices: {
      type: 'array',
      description: 'Up to 128 devices, ids unique; a node that sees more writes several slices.',
      maxItems: MAX_SLICE_DEVICES,
      items: sliceDeviceSchema,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['id'],
    },
    deviceCount: {
      type: 'integer',
      description: 'The number of devices, for kubectl get (a printer column cannot count).',
      minimum: 0,
      maximum: MAX_SLICE_DEVICES,
    },
    conditions: {
      ...conditions,
      description:
        "The node's conditions for the Discovery (DetailsValid, Discovering), on its first slice only.",
    },
  },
  'x-kubernetes-validations': [
    {
      rule: 'self.deviceCount == size(self.devices)',
      message: 'deviceCount must equal the number of devices',
    },
    {
      rule: 'self.node == oldSelf.node && self.discovery == oldSelf.discovery',
      message: 'node and discovery are immutable',
    },
  ],
} as const;

/** The whole object; metadata is validated by the API server itself. */
const resource = <Spec, Status>(description: string, spec: Spec, status?: Status) =>
  ({
    type: 'object',
    description,
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec,
      ...(status !== undefined ? { status } : {}),
    },
  }) as const;

export const discoverySchema = resource(
  'Discovery: what devices to look for, and on which nodes.',
  discoverySpecSchema,
  discoveryStatusSchema,
);

export const deviceSchema = resource(
  'Device: one device found by a Discovery.',
  deviceSpecSchema,
  deviceStatusSchema,
);

export const deviceSliceSchema = resource(
  'DeviceSlice: what one node sees now for one Discovery.',
  deviceSliceSpecSchema,
);
