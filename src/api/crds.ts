// The CustomResourceDefinitions of edgebridge.io, built from src/api/schema.ts.
// Plain wire-format objects (not @kubernetes/client-node models, whose serializer
// would drop `default` and the x-kubernetes-* extensions).
import { GROUP, VERSION } from './types.ts';
import { deviceSchema, deviceSliceSchema, discoverySchema } from './schema.ts';

export const DISCOVERY_PLURAL = 'discoveries';
export const DEVICE_PLURAL = 'devices';
export const DEVICE_SLICE_PLURAL = 'deviceslices';
export const CATEGORY = 'edgebridge';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
}

/** The parts of apiextensions.k8s.io/v1 CustomResourceDefinition that edgebridge uses. */
export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    scope: 'Namespaced';
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories: string[];
    };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: object };
      subresources?: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      selectableFields?: { jsonPath: string }[];
    }[];
  };
}

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

function crd(opts: {
  kind: string;
  plural: string;
  shortName: string;
  schema: object;
  columns: PrinterColumn[];
  selectableFields?: string[];
  /** False for kinds that have no status (written whole by one writer). */
  status?: boolean;
}): CustomResourceDefinition {
  const { kind, plural } = opts;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'edgebridge' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: kind.toLowerCase(),
        shortNames: [opts.shortName],
        categories: [CATEGORY],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: opts.schema },
          ...(opts.status !== false ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: [...opts.columns, age],
          ...(opts.selectableFields !== undefined
            ? { selectableFields: opts.selectableFields.map((jsonPath) => ({ jsonPath })) }
            : {}),
        },
      ],
    },
  };
}

export function discoveryCrd(): CustomResourceDefinition {
  return crd({
    kind: 'Discovery',
    plural: DISCOVERY_PLURAL,
    shortName: 'disc',
    schema: discoverySchema,
    columns: [
      { name: 'Handler', type: 'string', jsonPath: '.spec.handler.name' },
      { name: 'Devices', type: 'integer', jsonPath: '.status.devices' },
    ],
  });
}

export function deviceCrd(): CustomResourceDefinition {
  return crd({
    kind: 'Device',
    plural: DEVICE_PLURAL,
    shortName: 'dev',
    schema: deviceSchema,
    columns: [
      { name: 'Handler', type: 'string', jsonPath: '.spec.handler' },
      { name: 'Shared', type: 'boolean', jsonPath: '.spec.shared' },
      // The API server prints only the first match of a column's JSONPath, so this
      // shows one node; the description says how to see all of them.
      {
        name: 'Nodes',
        type: 'string',
        jsonPath: '.status.nodes[*].name',
        description:
          'The first node that sees the device; all of them: kubectl get devices -o custom-columns=NAME:.metadata.name,NODES:.status.nodes[*].name',
      },
    ],
    // Kubernetes 1.32+: `kubectl get devices --field-selector spec.handler=onvif`.
    selectableFields: ['.spec.handler', '.spec.discovery'],
  });
}

export function deviceSliceCrd(): CustomResourceDefinition {
  return crd({
    kind: 'DeviceSlice',
    plural: DEVICE_SLICE_PLURAL,
    shortName: 'devslice',
    schema: deviceSliceSchema,
    columns: [
      { name: 'Node', type: 'string', jsonPath: '.spec.node' },
      { name: 'Discovery', type: 'string', jsonPath: '.spec.discovery' },
      { name: 'Devices', type: 'integer', jsonPath: '.spec.deviceCount' },
    ],
    selectableFields: ['.spec.node', '.spec.discovery'],
    status: false,
  });
}

/** Every CRD, Discovery first. */
export function crds(): CustomResourceDefinition[] {
  return [discoveryCrd(), deviceCrd(), deviceSliceCrd()];
}
