// What a Discovery's `broker`, `deviceService` and `discoveryService` ask the
// controller to run for a Device: the objects that should exist, as a pure
// function of (Discovery, Device). The reconciler compares them with what the
// API server holds and creates, replaces or deletes the difference.
import { createHash } from 'node:crypto';
import {
  API_VERSION,
  LABEL_DISCOVERY,
  type Device,
  type Discovery,
  type OwnerReference,
} from '../api/types.ts';
import { canonicalJson } from '../util/canonical-json.ts';

/** The label that names the Device a broker Pod, Job or Service is for. */
export const LABEL_DEVICE = 'edgebridge.io/device';
/** The label that names the node a broker Pod is for. */
export const LABEL_BROKER_NODE = 'edgebridge.io/broker-node';
/** A hash of the spec the object was made from: pods and jobs are replaced, not patched, when it changes. */
export const ANNOTATION_SPEC_HASH = 'edgebridge.io/spec-hash';
/** Marks objects this controller made, so that it never touches others. */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'edgebridge-controller';

/** The smallest shape of an object the controller writes. */
export interface WorkloadObject {
  apiVersion: string;
  kind: 'Pod' | 'Job' | 'Service';
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences: OwnerReference[];
  };
  spec: Record<string, unknown>;
}

export interface WorkloadInput {
  discovery: Discovery;
  device: Device;
  /**
   * The extended resource a broker requests so that the scheduler places it
   * where a slot of the device is free (the device plugin's name for it);
   * undefined: no request, node affinity only.
   */
  resourceName?: string;
}

/**
 * The broker Pods (one per node that sees the Device) or the Job (one per
 * Device), and the Device's Service, that the Discovery asks for; [] when it
 * asks for none. Names are deterministic and at most 63 characters.
 */
export function deviceWorkloads(input: WorkloadInput): WorkloadObject[] {
  const { discovery, device } = input;
  const objects: WorkloadObject[] = [];
  const broker = discovery.spec.broker;
  const nodes = (device.status?.nodes ?? []).map((n) => n.name).sort();
  if (broker?.podSpec !== undefined) {
    for (const node of nodes) objects.push(brokerPod(input, broker.podSpec, node));
  } else if (broker?.jobSpec !== undefined && nodes.length > 0) {
    objects.push(brokerJob(input, broker.jobSpec, nodes));
  }
  if (discovery.spec.deviceService !== undefined) {
    objects.push(
      service(
        device,
        boundedName(device.metadata.name, 'svc'),
        { [LABEL_DEVICE]: device.metadata.name },
        discovery.spec.deviceService,
        deviceOwner(device),
      ),
    );
  }
  return objects;
}

/** The Service over every broker of the Discovery, when `discoveryService` asks for one. */
export function discoveryWorkloads(discovery: Discovery): WorkloadObject[] {
  const spec = discovery.spec.discoveryService;
  if (spec === undefined) return [];
  const name = discovery.metadata.name;
  return [
    service(
      { metadata: { namespace: discovery.metadata.namespace ?? 'default' } },
      boundedName(name, 'svc'),
      { [LABEL_DISCOVERY]: name },
      spec,
      {
        apiVersion: API_VERSION,
        kind: 'Discovery',
        name,
        uid: discovery.metadata.uid ?? '',
        controller: true,
        blockOwnerDeletion: true,
      },
    ),
  ];
}

function brokerPod(
  input: WorkloadInput,
  podSpec: Record<string, unknown>,
  node: string,
): WorkloadObject {
  const { device } = input;
  const spec = withDevice(podSpec, input, { nodes: [node] });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: boundedName(`${device.metadata.name}-${shortHash(node)}`, 'broker'),
      namespace: namespaceOf(device),
      labels: { ...brokerLabels(input), [LABEL_BROKER_NODE]: labelValue(node) },
      annotations: { [ANNOTATION_SPEC_HASH]: shortHash(canonicalJson(spec)) },
      ownerReferences: [deviceOwner(device)],
    },
    spec,
  };
}

function brokerJob(
  input: WorkloadInput,
  jobSpec: Record<string, unknown>,
  nodes: string[],
): WorkloadObject {
  const { device } = input;
  const template = objectAt(jobSpec, 'template');
  const podSpec = withDevice(objectAt(template, 'spec'), input, { nodes });
  const labels = brokerLabels(input);
  const spec = {
    ...jobSpec,
    template: {
      ...template,
      metadata: { ...objectAt(template, 'metadata'), labels: { ...labelsAt(template), ...labels } },
      spec: podSpec,
    },
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: boundedName(device.metadata.name, 'job'),
      namespace: namespaceOf(device),
      labels,
      annotations: { [ANNOTATION_SPEC_HASH]: shortHash(canonicalJson(spec)) },
      ownerReferences: [deviceOwner(device)],
    },
    spec,
  };
}

/**
 * The user's pod spec, placed on one of `nodes` (required node affinity on
 * the hostname, added to what the user asked) and, with a resource name,
 * asking its first container for one slot of the device.
 */
function withDevice(
  podSpec: Record<string, unknown>,
  input: WorkloadInput,
  where: { nodes: string[] },
): Record<string, unknown> {
  const hostname = {
    key: 'kubernetes.io/hostname',
    operator: 'In',
    values: where.nodes,
  };
  const affinity = objectAt(podSpec, 'affinity');
  const nodeAffinity = objectAt(affinity, 'nodeAffinity');
  const required = objectAt(nodeAffinity, 'requiredDuringSchedulingIgnoredDuringExecution');
  const userTerms = Array.isArray(required.nodeSelectorTerms)
    ? (required.nodeSelectorTerms as Record<string, unknown>[])
    : [];
  // Terms are ORed: the hostname requirement goes into each, so none can place the pod elsewhere.
  const terms =
    userTerms.length === 0
      ? [{ matchExpressions: [hostname] }]
      : userTerms.map((t) => ({
          ...t,
          matchExpressions: [
            ...(Array.isArray(t.matchExpressions) ? (t.matchExpressions as unknown[]) : []),
            hostname,
          ],
        }));
  const containers = Array.isArray(podSpec.containers)
    ? (podSpec.containers as Record<string, unknown>[])
    : [];
  const resourceName = input.resourceName;
  return {
    ...podSpec,
    affinity: {
      ...affinity,
      nodeAffinity: {
        ...nodeAffinity,
        requiredDuringSchedulingIgnoredDuringExecution: { ...required, nodeSelectorTerms: terms },
      },
    },
    containers:
      resourceName === undefined
        ? containers
        : containers.map((c, i) => (i === 0 ? withSlot(c, resourceName) : c)),
  };
}

/** An extended resource is requested by its limit (the request follows it). */
function withSlot(
  container: Record<string, unknown>,
  resourceName: string,
): Record<string, unknown> {
  const resources = objectAt(container, 'resources');
  return {
    ...container,
    resources: { ...resources, limits: { ...objectAt(resources, 'limits'), [resourceName]: '1' } },
  };
}

function service(
  owner: { metadata: { namespace?: string } },
  name: string,
  selector: Record<string, string>,
  userSpec: Record<string, unknown>,
  ownerReference: OwnerReference,
): WorkloadObject {
  const selectorLabels = Object.fromEntries(
    Object.entries(selector).map(([k, v]) => [k, labelValue(v)]),
  );
  const spec = {
    ...userSpec,
    selector: { ...selectorLabels, [LABEL_MANAGED_BY]: MANAGED_BY },
  };
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: owner.metadata.namespace ?? 'default',
      labels: { ...selectorLabels, [LABEL_MANAGED_BY]: MANAGED_BY },
      annotations: { [ANNOTATION_SPEC_HASH]: shortHash(canonicalJson(spec)) },
      ownerReferences: [ownerReference],
    },
    spec,
  };
}

function brokerLabels(input: WorkloadInput): Record<string, string> {
  return {
    [LABEL_DEVICE]: labelValue(input.device.metadata.name),
    [LABEL_DISCOVERY]: labelValue(input.discovery.metadata.name),
    [LABEL_MANAGED_BY]: MANAGED_BY,
  };
}

function deviceOwner(device: Device): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: 'Device',
    name: device.metadata.name,
    uid: device.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

function namespaceOf(device: Device): string {
  return device.metadata.namespace ?? 'default';
}

/** `<base>-<suffix>`, shortened with a hash of the whole to fit a DNS label (63). */
export function boundedName(base: string, suffix: string): string {
  const whole = `${base}-${suffix}`;
  if (whole.length <= 63) return whole;
  const keep = 63 - suffix.length - 1 - 8 - 1;
  return `${base.slice(0, keep).replace(/[-.]+$/, '')}-${shortHash(whole)}-${suffix}`;
}

/** A label value is at most 63 characters: longer names are shortened with a hash. */
function labelValue(value: string): string {
  if (value.length <= 63) return value;
  return `${value.slice(0, 54).replace(/[-._]+$/, '')}-${shortHash(value)}`;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

function objectAt(value: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = value[key];
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

function labelsAt(template: Record<string, unknown>): Record<string, unknown> {
  return objectAt(objectAt(template, 'metadata'), 'labels');
}
